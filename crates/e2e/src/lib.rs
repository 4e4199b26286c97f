//! Labwright's full-stack tests (in `tests/`): the api-server with the other binaries (real
//! host-agents, build workers, the terminal gateway, the CLI) against real PostgreSQL,
//! RabbitMQ, Docker and git. This library is empty; the crate exists so that no binary crate
//! has to dev-depend on the others.
