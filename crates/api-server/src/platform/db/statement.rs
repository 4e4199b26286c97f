//! Hand-written SQL that PostgreSQL prepares once per connection.
//!
//! diesel's `sql_query` marks itself unsafe to cache, so every call is parsed and planned again:
//! ~0.8 ms for the multi-CTE statements on the run path (claim, create, record a step), more
//! than the round trip it saves. [`Statement`] is cached by its SQL text like the DSL queries.

use diesel::{
    QueryResult,
    expression::AsExpression,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::Untyped,
};

/// SQL with `$1`, `$2`, … placeholders and their values. A placeholder may appear more than once;
/// a `$` followed by digits inside a string literal would be taken for one, so keep them out.
pub struct Statement<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

impl<'a> Statement<'a> {
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    /// Binds the next placeholder (`$1` first).
    pub fn bind<ST, T>(mut self, value: T) -> Self
    where
        T: AsExpression<ST>,
        T::Expression: QueryFragment<Pg> + Send + 'a,
        ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
    {
        self.binds.push(Box::new(value.as_expression()));
        self
    }
}

impl QueryFragment<Pg> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                out.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            out.push_sql(&rest[..at]);
            let n: usize = rest[at + 1..at + 1 + digits]
                .parse()
                .map_err(|_| diesel::result::Error::QueryBuilderError("bad placeholder".into()))?;
            let bind = n
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("placeholder ${n} has no value").into(),
                    )
                })?;
            bind.walk_ast(out.reborrow())?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// No static id: the statement cache keys it by its SQL text (and bind types).
impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::{debug_query, sql_types::Integer};

    #[test]
    fn placeholders_expand_in_order_and_may_repeat() {
        let s = Statement::new("SELECT $2, $1, $2 WHERE '$' = '$'")
            .bind::<Integer, _>(10)
            .bind::<Integer, _>(20);
        let sql = debug_query::<Pg, _>(&s).to_string();
        assert!(
            sql.starts_with("SELECT $1, $2, $3 WHERE '$' = '$'"),
            "{sql}"
        );
        assert!(sql.contains("[20, 10, 20]"), "{sql}");
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_panic() {
        let s = Statement::new("SELECT $3").bind::<Integer, _>(1);
        let mut sql = diesel::pg::PgQueryBuilder::default();
        let walked = QueryFragment::<Pg>::to_sql(&s, &mut sql, &Pg);
        assert!(walked.is_err());
    }
}
