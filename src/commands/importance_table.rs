//! eval's report: -log p(x) per proposal and K with its standard error over images and the mean
//! effective sample size, printed, as importance.csv and as importance.png (estimate and ESS
//! against K on log axes, a line per proposal).
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::files::write_atomic;
use crate::importance::Proposal;

/// Mean and standard error of the mean.
pub fn mean_and_se(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// One proposal at one K, over the evaluated images.
#[derive(Clone, Debug)]
pub struct Row {
    pub proposal: Proposal,
    pub k: usize,
    /// Mean over images of the estimate of -log p(x), nats, and its standard error.
    pub nll: f64,
    pub stderr: f64,
    /// Mean over images of (sum w)^2 / sum w^2, in [1, K].
    pub ess: f64,
    /// The proposal's whole pass (all K at once).
    pub seconds: f64,
}

pub fn print(rows: &[Row]) {
    println!("{:<9} {:>7} {:>12} {:>9} {:>11} {:>9}", "proposal", "K", "-log p(x)", "stderr", "mean ESS", "seconds");
    for r in rows {
        let note = if r.proposal == Proposal::Encoder && r.k == 1 { "  (one-sample negative ELBO)" } else { "" };
        println!(
            "{:<9} {:>7} {:>12.3} {:>9.3} {:>11.2} {:>9.1}{note}",
            r.proposal.name(),
            r.k,
            r.nll,
            r.stderr,
            r.ess,
            r.seconds
        );
    }
}

/// importance.csv and importance.png in `dir`, each written atomically.
pub fn write(dir: &Path, rows: &[Row], title: &str) -> Result<()> {
    let mut csv = String::from("proposal,k,nll,stderr,ess\n");
    for r in rows {
        csv += &format!("{},{},{},{},{}\n", r.proposal.name(), r.k, r.nll, r.stderr, r.ess);
    }
    write_atomic(&dir.join("importance.csv"), csv.as_bytes())?;
    let path = dir.join("importance.png");
    crate::curves::register_font();
    let size = (1200u32, 480u32);
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    render(&mut rgb, size, rows, title).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_png(&path, &rgb, size, image::ExtendedColorType::Rgb8)
}

fn color(p: Proposal) -> RGBColor {
    match p {
        Proposal::Encoder => BLUE,
        Proposal::Prior => RED,
    }
}

fn render(rgb: &mut [u8], size: (u32, u32), rows: &[Row], title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&format!("importance sampling: {title}"), ("sans-serif", 20))?;
    let panels = root.split_evenly((1, 2));
    let k_max = rows.iter().map(|r| r.k).max().unwrap_or(1) as f64;
    // A log axis needs some width even when a single K is measured.
    let ks = (0.7..k_max * 1.4).log_scale();
    let proposals: Vec<Proposal> = rows.iter().fold(Vec::new(), |mut v, r| {
        if !v.contains(&r.proposal) {
            v.push(r.proposal);
        }
        v
    });

    let lo = rows.iter().map(|r| r.nll - r.stderr).fold(f64::MAX, f64::min);
    let hi = rows.iter().map(|r| r.nll + r.stderr).fold(f64::MIN, f64::max);
    let pad = ((hi - lo) * 0.08).max(0.5);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("-log p(x) estimate (nats per image, ± standard error)", ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(ks.clone(), (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("K (samples per image)")
        .x_label_formatter(&|k| format!("{k:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    for &p in &proposals {
        let c = color(p);
        let line: Vec<&Row> = rows.iter().filter(|r| r.proposal == p).collect();
        chart
            .draw_series(LineSeries::new(line.iter().map(|r| (r.k as f64, r.nll)), c.stroke_width(2)).point_size(3))?
            .label(p.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(line.iter().map(|r| {
            ErrorBar::new_vertical(r.k as f64, r.nll - r.stderr, r.nll, r.nll + r.stderr, c.stroke_width(1), 8)
        }))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;

    let mut chart = ChartBuilder::on(&panels[1])
        .caption("mean effective sample size (sum w)² / sum w²", ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(ks, (0.7..k_max * 1.4).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("K (samples per image)")
        .x_label_formatter(&|k| format!("{k:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    let k_line: Vec<(f64, f64)> = [0.7, k_max * 1.4].iter().map(|&k| (k, k)).collect();
    chart
        .draw_series(LineSeries::new(k_line, BLACK.mix(0.4).stroke_width(1)))?
        .label("ESS = K (equal weights)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    for &p in &proposals {
        let c = color(p);
        let line = rows.iter().filter(|r| r.proposal == p).map(|r| (r.k as f64, r.ess));
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)).point_size(3))?
            .label(p.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
