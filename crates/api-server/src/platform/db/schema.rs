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
        host_name -> Nullable<Text>,
    }
}

diesel::table! {
    build_logs (build_id, attempt, line_no) {
        build_id -> Uuid,
        attempt -> Uuid,
        line_no -> Int8,
        seq -> Int8,
        line -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    builds (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        repo_url -> Text,
        git_ref -> Nullable<Text>,
        subdir -> Nullable<Text>,
        stage -> Text,
        stack -> Nullable<Text>,
        dockerfile -> Nullable<Text>,
        own_dockerfile -> Nullable<Bool>,
        image -> Nullable<Text>,
        reason -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        attempt -> Nullable<Uuid>,
    }
}

diesel::table! {
    device_reservations (device_id) {
        device_id -> Uuid,
        tenant_id -> Uuid,
        key_id -> Uuid,
        holder -> Text,
        created_at -> Timestamptz,
        ends_at -> Timestamptz,
        alive_until -> Timestamptz,
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
        health -> Nullable<Text>,
        health_reason -> Text,
        health_checked_at -> Nullable<Timestamptz>,
        power_state -> Nullable<Text>,
        power_read_at -> Nullable<Timestamptz>,
        power_switched_at -> Nullable<Timestamptz>,
        power_switched_by_kind -> Nullable<Text>,
        power_switched_by_id -> Nullable<Uuid>,
        power_switched_by_name -> Text,
    }
}

diesel::table! {
    execution_steps (execution_id, idx) {
        execution_id -> Uuid,
        idx -> Int4,
        tenant_id -> Uuid,
        path -> Text,
        kind -> Text,
        verdict -> Text,
        reason -> Text,
        started_at -> Timestamptz,
        duration_ms -> Float8,
        screenshot_key -> Nullable<Text>,
        measurements -> Jsonb,
        received_at -> Timestamptz,
        screenshot_pending -> Bool,
    }
}

diesel::table! {
    executions (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        device_id -> Uuid,
        testcase_id -> Uuid,
        status -> Text,
        reason -> Text,
        steps_total -> Nullable<Int4>,
        cancel_requested -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        dispatched_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        heartbeat_at -> Nullable<Timestamptz>,
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
    nav_edge_stats (tenant_id, model, edge_id) {
        tenant_id -> Uuid,
        model -> Text,
        edge_id -> Text,
        attempts -> Int8,
        successes -> Int8,
        mean_duration_ms -> Float8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    navigation_trees (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        model -> Text,
        version -> Int4,
        document -> Jsonb,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Int8,
        tenant_id -> Uuid,
        routing_key -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        exchange -> Text,
    }
}

diesel::table! {
    reference_images (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        width -> Int4,
        height -> Int4,
        object_key -> Text,
        sha256 -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    session_logs (session_id, container_id, line_no) {
        session_id -> Uuid,
        container_id -> Text,
        line_no -> Int8,
        seq -> Int8,
        line -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        build_id -> Uuid,
        container_id -> Text,
        network -> Text,
        status -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        hard_expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        end_reason -> Text,
        exit_code -> Nullable<Int4>,
        oom_killed -> Bool,
        exited_at -> Nullable<Timestamptz>,
        restarts -> Int4,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    testcases (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        version -> Int4,
        source -> Text,
        document -> Jsonb,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(build_logs -> builds (build_id));
diesel::joinable!(builds -> tenants (tenant_id));
diesel::joinable!(device_reservations -> devices (device_id));
diesel::joinable!(device_reservations -> tenants (tenant_id));
diesel::joinable!(devices -> hosts (host_id));
diesel::joinable!(devices -> tenants (tenant_id));
diesel::joinable!(execution_steps -> executions (execution_id));
diesel::joinable!(execution_steps -> tenants (tenant_id));
diesel::joinable!(executions -> devices (device_id));
diesel::joinable!(executions -> tenants (tenant_id));
diesel::joinable!(executions -> testcases (testcase_id));
diesel::joinable!(hosts -> tenants (tenant_id));
diesel::joinable!(nav_edge_stats -> tenants (tenant_id));
diesel::joinable!(navigation_trees -> tenants (tenant_id));
diesel::joinable!(outbox_events -> tenants (tenant_id));
diesel::joinable!(reference_images -> tenants (tenant_id));
diesel::joinable!(session_logs -> sessions (session_id));
diesel::joinable!(sessions -> builds (build_id));
diesel::joinable!(sessions -> tenants (tenant_id));
diesel::joinable!(testcases -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    build_logs,
    builds,
    device_reservations,
    devices,
    execution_steps,
    executions,
    hosts,
    nav_edge_stats,
    navigation_trees,
    outbox_events,
    reference_images,
    session_logs,
    sessions,
    tenants,
    testcases,
);
