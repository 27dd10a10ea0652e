//! What a message says when the configuration does not say otherwise: the
//! subject upstream's default subject template produces, and a plain-text
//! summary of the notification (written for Pharos: upstream's default body is
//! an HTML template, and there is no template language here yet).

use pharos_sdk::{Alert, AlertStatus, Label, Notification};
use std::fmt::Write as _;

fn values(labels: &[Label]) -> Vec<&str> {
    let mut sorted: Vec<&Label> = labels.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.iter().map(|l| l.value.as_str()).collect()
}

/// `[FIRING:2] <group label values> (<other common label values>)`, as
/// upstream's `__subject` renders it: values in label-name order, the status
/// upper-cased with the count of firing alerts when firing, the parenthesis
/// only when the alerts share labels beyond the group's, and the space before
/// it either way.
pub fn subject(n: &Notification) -> String {
    let mut out = match n.status {
        AlertStatus::Firing => {
            let firing = n
                .alerts
                .iter()
                .filter(|a| a.status == AlertStatus::Firing)
                .count();
            format!("[FIRING:{firing}] ")
        }
        AlertStatus::Resolved => "[RESOLVED] ".to_owned(),
    };
    out.push_str(&values(&n.group_labels).join(" "));
    out.push(' ');
    if n.common_labels.len() > n.group_labels.len() {
        let rest: Vec<Label> = n
            .common_labels
            .iter()
            .filter(|c| !n.group_labels.iter().any(|g| g.name == c.name))
            .cloned()
            .collect();
        let _ = write!(out, "({})", values(&rest).join(" "));
    }
    out
}

fn pairs(labels: &[Label]) -> String {
    let mut sorted: Vec<&Label> = labels.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn section(out: &mut String, title: &str, alerts: &[&Alert]) {
    if alerts.is_empty() {
        return;
    }
    let _ = write!(out, "\n{title} ({}):\n", alerts.len());
    for a in alerts {
        let name = a
            .labels
            .iter()
            .find(|l| l.name == "alertname")
            .map_or("", |l| l.value.as_str());
        let _ = writeln!(out, "\n- {name}");
        let _ = writeln!(out, "  Labels: {}", pairs(&a.labels));
        if !a.annotations.is_empty() {
            let _ = writeln!(out, "  Annotations: {}", pairs(&a.annotations));
        }
        let _ = writeln!(out, "  Started: {}", utc(a.starts_at));
        if a.status == AlertStatus::Resolved
            && let Some(end) = a.ends_at
        {
            let _ = writeln!(out, "  Ended: {}", utc(end));
        }
        if !a.generator_url.is_empty() {
            let _ = writeln!(out, "  Source: {}", a.generator_url);
        }
    }
}

/// The plain-text body: the subject line, the group's labels, then each
/// firing and each resolved alert with its labels, annotations, times and
/// source.
pub fn text(n: &Notification) -> String {
    let mut out = subject(n).trim_end().to_owned();
    out.push('\n');
    let _ = writeln!(out, "\nReceiver: {}", n.receiver);
    if !n.group_labels.is_empty() {
        let _ = writeln!(out, "Group: {}", pairs(&n.group_labels));
    }
    let firing: Vec<&Alert> = n
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .collect();
    let resolved: Vec<&Alert> = n
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Resolved)
        .collect();
    section(&mut out, "Firing", &firing);
    section(&mut out, "Resolved", &resolved);
    if n.truncated_alerts > 0 {
        let _ = write!(out, "\n{} more alerts left out.\n", n.truncated_alerts);
    }
    if !n.external_url.is_empty() {
        let _ = write!(out, "\nSent by {}\n", n.external_url);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::notification;

    #[test]
    fn subjects_as_upstreams_default() {
        let mut n = notification();
        assert_eq!(subject(&n), "[FIRING:1] Disk (a:9100)");
        n.common_labels.truncate(1);
        assert_eq!(subject(&n), "[FIRING:1] Disk ");
        n.status = AlertStatus::Resolved;
        n.alerts[0].status = AlertStatus::Resolved;
        assert_eq!(subject(&n), "[RESOLVED] Disk ");
    }

    #[test]
    fn the_text_lists_each_alert() {
        let mut n = notification();
        n.alerts.push(Alert {
            status: AlertStatus::Resolved,
            ends_at: Some(1_700_000_060_000),
            ..n.alerts[0].clone()
        });
        n.truncated_alerts = 2;
        let t = text(&n);
        assert!(
            t.starts_with("[FIRING:1] Disk (a:9100)\n\nReceiver: ops\nGroup: alertname=Disk\n"),
            "{t}"
        );
        assert!(
            t.contains("Firing (1):\n\n- Disk\n  Labels: alertname=Disk, instance=a:9100\n"),
            "{t}"
        );
        assert!(
            t.contains("  Annotations: summary=disk full\n  Started: 2023-11-14 22:13:20 UTC\n"),
            "{t}"
        );
        assert!(t.contains("Resolved (1):"), "{t}");
        assert!(t.contains("  Ended: 2023-11-14 22:14:20 UTC\n"), "{t}");
        assert!(t.contains("  Source: http://prom/graph\n"), "{t}");
        assert!(t.contains("2 more alerts left out."), "{t}");
    }
}
