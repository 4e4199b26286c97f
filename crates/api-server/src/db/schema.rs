// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        role -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    devices (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        host_id -> Uuid,
        device_key -> Text,
        name -> Text,
        model -> Text,
        driver -> Text,
        capabilities -> Array<Nullable<Text>>,
        tags -> Array<Nullable<Text>>,
        status -> Text,
        status_detail -> Text,
        present -> Bool,
        last_seen_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    hosts (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        status -> Text,
        agent_version -> Text,
        info -> Jsonb,
        stats -> Nullable<Jsonb>,
        last_seen_at -> Timestamptz,
        connected_at -> Nullable<Timestamptz>,
        connection_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Int8,
        tenant_id -> Uuid,
        routing_key -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(devices -> hosts (host_id));
diesel::joinable!(devices -> tenants (tenant_id));
diesel::joinable!(hosts -> tenants (tenant_id));
diesel::joinable!(outbox_events -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(api_keys, devices, hosts, outbox_events, tenants,);
