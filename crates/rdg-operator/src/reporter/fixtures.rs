//! Status reports for the unit tests of the pure pieces.

use rdg_agent::status::StatusReport;
use serde_json::json;

/// Member `ics-b` in `state` at `epoch`, believing in `hot`; `ics-a` alive and heard on both
/// networks unless `silent_on` names one.
pub fn report(state: &str, epoch: u64, hot: Option<&str>, silent_on: Option<&str>) -> StatusReport {
    let net = |name: &str| {
        let healthy = silent_on != Some(name);
        json!({"name": name, "healthy": healthy, "lastHeardMsAgo": 40, "anomaly": !healthy, "address": null})
    };
    serde_json::from_value(json!({
        "group": "infocast", "member": "ics-b", "state": state, "temporal": "iNone",
        "epoch": epoch, "hot": hot, "priority": 50, "leaseRemainingMs": null,
        "netCheck": {"enabled": true, "ok": true, "targets": ["10.0.0.1"]},
        "networks": [
            {"name": "primary", "address": "10.0.0.12", "multicast": null},
            {"name": "secondary", "address": "192.168.0.12", "multicast": null}
        ],
        "members": [
            {"name": "ics-a", "self": false, "state": "HS", "temporal": "iNone", "priority": 100,
             "epoch": epoch, "netCheckOk": true, "alive": true,
             "networks": [net("primary"), net("secondary")]},
            {"name": "ics-b", "self": true, "state": state, "temporal": "iNone", "priority": 50,
             "epoch": epoch, "netCheckOk": true, "alive": true, "networks": []}
        ],
        "vips": [{"address": "10.0.0.100/24", "interface": "eth0", "held": state == "HS", "error": null}]
    }))
    .expect("a valid report")
}
