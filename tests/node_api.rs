//! The REST API of a single node, through HTTP against the real binary.

mod support;

use support::Process;

#[test]
fn every_route_and_error_case_through_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Process::node(dir.path());
    support::api_suite::run(&node.url, "api_");
}
