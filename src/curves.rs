//! curves.png: the loss, its reconstruction term and its KL term per epoch, train beside
//! validation, drawn with plotters (text in the embedded DejaVu Sans, so no system fonts needed).
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::checkpoint::EpochMetrics;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1500, 460);

pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and known good; a failure would show as missing text, not a crash.
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).ok();
    });
}

/// Draws three panels (negative ELBO, reconstruction, KL) and writes them as a PNG, atomically.
pub fn draw(path: &Path, history: &[EpochMetrics], title: &str) -> Result<()> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    render(&mut rgb, history, title).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_png(path, &rgb, SIZE, image::ExtendedColorType::Rgb8)
}

type Series = fn(&EpochMetrics) -> (f32, f32);

fn render(rgb: &mut [u8], history: &[EpochMetrics], title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&format!("training curves: {title}"), ("sans-serif", 22))?;
    let panels: [(&str, Series); 3] = [
        ("negative ELBO (nats per example)", |m| (m.train_loss, m.val_loss)),
        ("reconstruction -log p(x|z)", |m| (m.train_rec, m.val_rec)),
        ("KL(q(z|x) || p(z))", |m| (m.train_kl, m.val_kl)),
    ];
    let last_epoch = history.last().map_or(1, |m| m.epoch) as f32;
    for (area, (caption, series)) in root.split_evenly((1, 3)).iter().zip(panels) {
        let values: Vec<(f32, f32, f32)> = history
            .iter()
            .map(|m| {
                let (t, v) = series(m);
                (m.epoch as f32, t, v)
            })
            .collect();
        let (lo, hi) =
            values.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &(_, t, v)| (lo.min(t).min(v), hi.max(t).max(v)));
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5f32..last_epoch + 0.5, (lo - pad)..(hi + pad))?;
        let whole_epochs = |x: &f32| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() };
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("nats")
            .label_style(("sans-serif", 13))
            .x_label_formatter(&whole_epochs)
            .light_line_style(WHITE)
            .draw()?;
        for (name, color, pick) in [("train", BLUE, 1), ("validation", RED, 2)] {
            let points = values.iter().map(move |&(e, t, v)| (e, if pick == 1 { t } else { v }));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(3))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
