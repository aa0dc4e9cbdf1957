//! The conformance report: JSON for machines, and one self-contained HTML page (inline
//! CSS, no scripts, no external resources) a person can open anywhere.

use serde::Serialize;

use super::check::{Outcome, Status};

#[derive(Debug, Serialize)]
pub struct Report {
    /// The identity endpoint the run authenticated against.
    pub cloud: String,
    pub started_at: String,
    pub seconds: f64,
    pub passed: usize,
    pub failed: usize,
    pub not_offered: usize,
    pub clauses: Vec<Outcome>,
}

impl Report {
    pub fn new(cloud: String, started_at: String, seconds: f64, clauses: Vec<Outcome>) -> Report {
        let count = |s: Status| clauses.iter().filter(|o| o.status == s).count();
        Report {
            cloud,
            started_at,
            seconds,
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            not_offered: count(Status::NotOffered),
            clauses,
        }
    }

    /// Every clause passed.
    pub fn conforms(&self) -> bool {
        self.failed == 0 && self.not_offered == 0
    }

    pub fn html(&self) -> String {
        let mut rows = String::new();
        for o in &self.clauses {
            let (class, label) = match o.status {
                Status::Pass => ("pass", "pass 通过"),
                Status::Fail => ("fail", "fail 不通过"),
                Status::NotOffered => ("absent", "not offered 未提供"),
            };
            let mut evidence = String::new();
            for e in &o.evidence {
                let status = e.status.map(|s| format!(" → {s}")).unwrap_or_default();
                let request = if e.request.is_empty() {
                    String::new()
                } else {
                    format!("<code>{}{status}</code>", escape(&e.request))
                };
                let note = if e.note.is_empty() {
                    String::new()
                } else {
                    format!(" <span class=note>{}</span>", escape(&e.note))
                };
                evidence.push_str(&format!("<li>{request}{note}</li>"));
            }
            rows.push_str(&format!(
                "<tr class={class} id=\"{id}\"><td class=id>{id}</td><td>{title}</td><td><code>{endpoint}</code></td>\
                 <td class=status>{label}</td><td><details><summary>{n} request(s), {ms} ms</summary><ul>{evidence}</ul></details></td></tr>\n",
                id = escape(o.id),
                title = escape(o.title),
                endpoint = escape(o.endpoint),
                n = o.evidence.iter().filter(|e| !e.request.is_empty()).count(),
                ms = o.millis,
            ));
        }
        format!(
            r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>云计算服务 IaaS 接口符合性报告 — {cloud}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", system-ui, sans-serif; margin: 2em; color: #1d2330; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }}
.summary {{ margin: 0.5em 0 1.5em; }}
.summary span {{ display: inline-block; padding: 0.2em 0.8em; border-radius: 1em; margin-right: 0.5em; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.92em; }}
th, td {{ border: 1px solid #d4d8e0; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #eef1f6; }}
td.id {{ white-space: nowrap; font-weight: 600; }}
td.status {{ white-space: nowrap; font-weight: 600; }}
tr.pass td.status, .summary .pass {{ background: #dff3e4; color: #14532d; }}
tr.fail td.status, .summary .fail {{ background: #fde2e1; color: #7f1d1d; }}
tr.absent td.status, .summary .absent {{ background: #fdf3d7; color: #713f12; }}
code {{ font-size: 0.9em; word-break: break-all; }}
.note {{ color: #7f1d1d; }}
ul {{ margin: 0.3em 0; padding-left: 1.2em; }}
</style>
</head>
<body>
<h1>云计算服务 IaaS 接口符合性报告 (CH/Z 附录 B)</h1>
<div>Cloud: <code>{cloud}</code> · started {started} · {seconds:.1} s</div>
<div class="summary"><span class="pass">{passed} pass 通过</span><span class="fail">{failed} fail 不通过</span><span class="absent">{absent} not offered 未提供</span></div>
<table id="clauses">
<thead><tr><th>clause 条款</th><th>title 名称</th><th>endpoint 接口</th><th>result 结果</th><th>evidence 证据</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</body>
</html>
"#,
            cloud = escape(&self.cloud),
            started = escape(&self.started_at),
            seconds = self.seconds,
            passed = self.passed,
            failed = self.failed,
            absent = self.not_offered,
        )
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
