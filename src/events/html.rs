//! The report as one self-contained HTML page: inline CSS, charts as inline SVG drawn
//! by plotters, no scripts, no fonts or images from anywhere. It opens from a file, an
//! e-mail attachment or `serve`'s `GET /report` alike.
//!
//! Each chart is a `<figure>` with an id (`deploys-per-week`, `lead-time`,
//! `failure-rate`, `recovery-time`, `top-rejections`) whose bars are `<rect>`s and
//! whose points are `<circle>`s in the chart's own color, so a test (or a person with
//! the browser's inspector) can count them.

use plotters::prelude::*;

use super::report::{bands, duration, Band, Report, Week};

/// The bar and point color of every chart (and the one a test looks for).
pub const MARK: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
/// The most rules the "top rejected rules" chart shows.
pub const TOP_RULES: usize = 10;

pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>gitops-render: DORA report</title>\n<style>\n",
        "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#1a202c;padding:0 1rem}\n",
        "h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem}\n",
        ".muted{color:#5a6577}table{border-collapse:collapse;width:100%;margin:.5rem 0}\n",
        "th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e2e8f0;vertical-align:top}\n",
        "th{background:#f7fafc;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\n",
        ".band{display:inline-block;border-radius:.6rem;padding:0 .5rem;font-size:.8rem;font-weight:600;margin-left:.3rem}\n",
        ".elite{background:#c6f6d5;color:#22543d}.high{background:#bee3f8;color:#2a4365}\n",
        ".medium{background:#fefcbf;color:#744210}.low{background:#fed7d7;color:#742a2a}\n",
        ".better{color:#276749}.worse{color:#9b2c2c}.same{color:#5a6577}\n",
        ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}\n",
        "figure{margin:0;border:1px solid #e2e8f0;border-radius:.5rem;padding:.5rem}\n",
        "figcaption{font-weight:600;margin:.2rem .4rem .4rem}svg{width:100%;height:auto;display:block}\n",
        "</style>\n</head>\n<body>\n"
    ));
    out.push_str("<h1>DORA report</h1>\n");
    out.push_str(&format!(
        "<p class=\"muted\">{} to {} &middot; deployments to {} &middot; compared with the {} days before</p>\n",
        esc(&super::rfc3339(report.since)),
        esc(&super::rfc3339(report.until)),
        esc(&if report.deploy_envs.is_empty() {
            "every environment".to_string()
        } else {
            report.deploy_envs.join(", ")
        }),
        (report.until - report.since) / 86_400_000
    ));

    out.push_str("<h2>The four keys</h2>\n<table id=\"keys\">\n<thead><tr><th>team</th><th>deployments</th><th>deployment frequency</th><th>lead time for changes<br><span class=\"muted\">median / p90</span></th><th>change failure rate</th><th>failed-deployment recovery time<br><span class=\"muted\">median</span></th></tr></thead>\n<tbody>\n");
    if report.groups.is_empty() {
        out.push_str(
            "<tr><td colspan=\"6\" class=\"muted\">No deployments in this window.</td></tr>\n",
        );
    }
    for g in &report.groups {
        let c = &g.current;
        let b = bands(c);
        let t = g.trends();
        let mut who = esc(&g.team);
        for part in [&g.app, &g.env].into_iter().flatten() {
            who.push_str(&format!(" / {}", esc(part)));
        }
        out.push_str(&format!(
            "<tr><td>{who}</td><td class=\"n\">{}</td><td>{:.2} per day{}</td><td>{} / {}{}</td><td>{}{}</td><td>{}{}</td></tr>\n",
            c.deployments,
            c.deploys_per_day,
            badge(b[0], &t[0]),
            duration(c.lead_median),
            duration(c.lead_p90),
            badge(b[1], &t[1]),
            c.failure_rate
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "&ndash;".into()),
            badge(b[2], &t[2]),
            duration(c.recovery_median),
            badge(b[3], &t[3]),
        ));
    }
    out.push_str("</tbody></table>\n<p class=\"muted\">Bands: DORA performance levels of the 2023 Accelerate State of DevOps Report. Arrows compare with the previous window.</p>\n");

    out.push_str("<h2>Over time</h2>\n<div class=\"charts\">\n");
    let weeks = &report.weeks;
    figure(
        &mut out,
        "deploys-per-week",
        "Deployments per week",
        &bars(
            &weeks
                .iter()
                .map(|w| (week_label(w), w.deployments as f64))
                .collect::<Vec<_>>(),
            "deployments",
        ),
    );
    figure(
        &mut out,
        "lead-time",
        "Lead time for changes, median per week (hours)",
        &points(weeks, |w| w.lead_median.map(|s| s / 3600.0), "hours"),
    );
    figure(
        &mut out,
        "failure-rate",
        "Change failure rate per week (%)",
        &points(
            weeks,
            |w| (w.deployments > 0).then(|| 100.0 * w.failed as f64 / w.deployments as f64),
            "%",
        ),
    );
    figure(
        &mut out,
        "recovery-time",
        "Failed-deployment recovery time, median per week (hours)",
        &points(weeks, |w| w.recovery_median.map(|s| s / 3600.0), "hours"),
    );
    let top: Vec<(String, f64)> = report
        .rejections
        .iter()
        .take(TOP_RULES)
        .map(|(r, n)| (r.clone(), *n as f64))
        .collect();
    figure(
        &mut out,
        "top-rejections",
        "Top rejected rules",
        &bars(&top, "rejected deploys"),
    );
    out.push_str("</div>\n");

    out.push_str("<h2>Rejected deploys by rule</h2>\n<table id=\"rejections\"><thead><tr><th>rule</th><th>rejected deploys</th></tr></thead><tbody>\n");
    if report.rejections.is_empty() {
        out.push_str("<tr><td colspan=\"2\" class=\"muted\">None.</td></tr>\n");
    }
    for (rule, n) in &report.rejections {
        out.push_str(&format!(
            "<tr><td><code>{}</code></td><td class=\"n\">{n}</td></tr>\n",
            esc(rule)
        ));
    }
    out.push_str("</tbody></table>\n");

    out.push_str(&format!(
        "<h2>Drift and checks</h2>\n<p id=\"drift\">{} verify run(s), {} found drift{}. {} pull-request check(s), {} failed.</p>\n",
        report.verify_runs,
        report.verify_with_drift,
        if report.drift_rules.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                report
                    .drift_rules
                    .iter()
                    .map(|(r, n)| format!("<code>{}</code> &times;{n}", esc(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        report.checks,
        report.checks_failed
    ));

    out.push_str("<h2>Holds open now</h2>\n<table id=\"holds\"><thead><tr><th>app / env</th><th>team</th><th>held on</th><th>since</th><th>by</th></tr></thead><tbody>\n");
    if report.holds.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">None.</td></tr>\n");
    }
    for h in &report.holds {
        out.push_str(&format!(
            "<tr><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&h.app),
            esc(&h.env),
            esc(h.team.as_deref().unwrap_or("")),
            esc(h.version.as_deref().unwrap_or("")),
            esc(&super::rfc3339(h.since)),
            esc(h.actor.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table>\n<p class=\"muted\">Generated by gitops-render from its event store.</p>\n</body>\n</html>\n");
    out
}

fn badge(band: Option<Band>, trend: &serde_json::Value) -> String {
    let mut s = match band {
        Some(b) => format!(" <span class=\"band {0}\">{0}</span>", b.as_str()),
        None => String::new(),
    };
    if let Some(t) = trend.as_str() {
        let arrow = match t {
            "better" => "&#9650; better",
            "worse" => "&#9660; worse",
            _ => "&#9654; same",
        };
        s.push_str(&format!(" <span class=\"{t}\">{arrow}</span>"));
    }
    s
}

fn figure(out: &mut String, id: &str, caption: &str, svg: &str) {
    out.push_str(&format!(
        "<figure id=\"{id}\"><figcaption>{}</figcaption>\n{svg}\n</figure>\n",
        esc(caption)
    ));
}

fn week_label(w: &Week) -> String {
    match jiff::Timestamp::from_millisecond(w.start) {
        Ok(t) => t.strftime("%m-%d").to_string(),
        Err(_) => String::new(),
    }
}

const SIZE: (u32, u32) = (560, 300);

/// A bar per labelled value (`<rect>`s in `MARK`); an empty chart says so.
fn bars(values: &[(String, f64)], y_desc: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let _ = root.fill(&WHITE);
        if values.is_empty() {
            let _ = root.draw_text(
                "no data",
                &("sans-serif", 16).into_text_style(&root),
                (240, 140),
            );
        } else {
            let max = values.iter().map(|v| v.1).fold(0.0, f64::max).max(1.0) * 1.1;
            let labels: Vec<String> = values.iter().map(|v| v.0.clone()).collect();
            let n = values.len();
            let chart = ChartBuilder::on(&root)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(45)
                .build_cartesian_2d(0f64..n as f64, 0f64..max);
            if let Ok(mut chart) = chart {
                let _ = chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .light_line_style(TRANSPARENT)
                    .x_labels(n.min(12))
                    .x_label_formatter(&|x| {
                        let i = x.floor() as usize;
                        if (x - x.floor()).abs() < 1e-9 {
                            labels.get(i).map(|l| short(l)).unwrap_or_default()
                        } else {
                            String::new()
                        }
                    })
                    .y_desc(y_desc)
                    .draw();
                let _ = chart.draw_series(values.iter().enumerate().map(|(i, (_, v))| {
                    Rectangle::new(
                        [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                        MARK.filled(),
                    )
                }));
            }
        }
        let _ = root.present();
    }
    svg
}

/// A point per week with data (`<circle>`s in `MARK`), joined by a line.
fn points(weeks: &[Week], value: impl Fn(&Week) -> Option<f64>, y_desc: &str) -> String {
    let data: Vec<(f64, f64)> = weeks
        .iter()
        .enumerate()
        .filter_map(|(i, w)| value(w).map(|v| (i as f64 + 0.5, v)))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let _ = root.fill(&WHITE);
        if data.is_empty() {
            let _ = root.draw_text(
                "no data",
                &("sans-serif", 16).into_text_style(&root),
                (240, 140),
            );
        } else {
            let max = data.iter().map(|v| v.1).fold(0.0, f64::max).max(1.0) * 1.1;
            let n = weeks.len().max(1);
            let labels: Vec<String> = weeks.iter().map(week_label).collect();
            if let Ok(mut chart) = ChartBuilder::on(&root)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(45)
                .build_cartesian_2d(0f64..n as f64, 0f64..max)
            {
                let _ = chart
                    .configure_mesh()
                    .light_line_style(TRANSPARENT)
                    .x_labels(n.min(12))
                    .x_label_formatter(&|x| {
                        let i = x.floor() as usize;
                        if (x - x.floor()).abs() < 1e-9 {
                            labels.get(i).cloned().unwrap_or_default()
                        } else {
                            String::new()
                        }
                    })
                    .y_desc(y_desc)
                    .draw();
                let _ =
                    chart.draw_series(LineSeries::new(data.iter().copied(), MARK.stroke_width(2)));
                let _ = chart.draw_series(data.iter().map(|p| Circle::new(*p, 4, MARK.filled())));
            }
        }
        let _ = root.present();
    }
    svg
}

fn short(s: &str) -> String {
    if s.chars().count() > 18 {
        format!("{}…", s.chars().take(17).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
