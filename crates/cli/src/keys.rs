//! `keys` and `whoami`: API keys and the caller.

use labwright_wire::rest::{CreateKey, CreatedKey, KeyView, WhoAmI};
use serde_json::json;

use crate::{
    Client, KeysCommand,
    client::decode,
    output::{Io, cell, print_json},
    table,
};

pub(crate) fn keys(client: &Client, command: KeysCommand, io: Io<'_>) -> anyhow::Result<()> {
    let Io { out, json, .. } = io;
    match command {
        KeysCommand::Create { name, role, quiet } => {
            let answer = client.post(
                "/api/v1/keys",
                &CreateKey {
                    name,
                    role,
                    host_name: None,
                },
            )?;
            if json && !quiet {
                return print_json(out, &answer);
            }
            let created: CreatedKey = decode(&answer)?;
            if quiet {
                writeln!(out, "{}", created.secret)?;
                return Ok(());
            }
            writeln!(
                out,
                "created {} key {:?} ({})",
                created.key.role, created.key.name, created.key.id
            )?;
            writeln!(
                out,
                "secret (shown once, store it now):\n{}",
                created.secret
            )?;
            Ok(())
        }
        KeysCommand::List => {
            let answer = client.get("/api/v1/keys", &[])?;
            if json {
                return print_json(out, &answer);
            }
            let keys: Vec<KeyView> = decode(&answer)?;
            let rows = keys
                .iter()
                .map(|k| {
                    let state = match &k.revoked_at {
                        None => "active".to_string(),
                        Some(at) => format!("revoked {}", cell(at)),
                    };
                    vec![
                        k.prefix.clone(),
                        k.name.clone(),
                        k.role.clone(),
                        state,
                        cell(&k.last_used_at),
                        k.id.to_string(),
                    ]
                })
                .collect();
            table::write(
                out,
                &["PREFIX", "NAME", "ROLE", "STATE", "LAST USED", "ID"],
                rows,
            )
        }
        KeysCommand::Revoke { id } => {
            client.delete(&format!("/api/v1/keys/{id}"))?;
            if json {
                return print_json(out, &json!({"revoked": id}));
            }
            writeln!(out, "revoked key {id}")?;
            Ok(())
        }
    }
}

pub(crate) fn whoami(client: &Client, io: Io<'_>) -> anyhow::Result<()> {
    let answer = client.get("/api/v1/whoami", &[])?;
    if io.json {
        return print_json(io.out, &answer);
    }
    let me: WhoAmI = decode(&answer)?;
    writeln!(
        io.out,
        "tenant {} ({})\nkey    {} ({})\nrole   {}",
        me.tenant_name, me.tenant_id, me.key_name, me.key_id, me.role
    )?;
    Ok(())
}
