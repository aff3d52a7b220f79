//! latents.png: the codes of a split as points coloured by class, with a legend of the class
//! names. A 2-D latent is drawn as it is; a wider one on its first two principal components
//! (the axes say which, and the share of the variance each holds).
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 760);

/// `points` [n, width] (the codes' means or logits), `labels` [n]; `title` names the model and split.
pub fn draw(path: &Path, (points, width): (&[f32], usize), labels: &[u8], names: &[String], title: &str) -> Result<()> {
    crate::curves::register_font();
    let (xy, axes) = project(points, width);
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    render(&mut rgb, (&xy, &axes), labels, names, title).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_png(path, &rgb, SIZE, image::ExtendedColorType::Rgb8)
}

/// The two coordinates to draw per point, and the axes' names.
fn project(points: &[f32], width: usize) -> (Vec<(f32, f32)>, [String; 2]) {
    let rows: Vec<&[f32]> = points.chunks_exact(width.max(1)).collect();
    match width {
        1 => (rows.iter().map(|r| (r[0], 0.0)).collect(), ["z1".into(), "(1-D latent)".into()]),
        2 => (rows.iter().map(|r| (r[0], r[1])).collect(), ["z1".into(), "z2".into()]),
        _ => {
            let (components, shares) = principal_components(&rows, width);
            let at = |r: &[f32], c: &[f64]| r.iter().zip(c).map(|(&v, &w)| v as f64 * w).sum::<f64>() as f32;
            let xy = rows.iter().map(|r| (at(r, &components[0]), at(r, &components[1]))).collect();
            let name = |k: usize| format!("principal component {} ({:.0}% of the variance)", k + 1, 100.0 * shares[k]);
            (xy, [name(0), name(1)])
        }
    }
}

/// The covariance's two leading eigenvectors (power iteration, the second after deflation) and
/// the share of the total variance along each.
pub fn principal_components(rows: &[&[f32]], width: usize) -> ([Vec<f64>; 2], [f64; 2]) {
    let n = rows.len().max(1) as f64;
    let mean: Vec<f64> = (0..width).map(|j| rows.iter().map(|r| r[j] as f64).sum::<f64>() / n).collect();
    let mut cov = vec![0.0f64; width * width];
    for r in rows {
        for i in 0..width {
            for j in 0..width {
                cov[i * width + j] += (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]) / n;
            }
        }
    }
    let total: f64 = (0..width).map(|i| cov[i * width + i]).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut found: Vec<(Vec<f64>, f64)> = Vec::new();
    for _ in 0..2 {
        let mut v: Vec<f64> = (0..width).map(|i| 1.0 + i as f64 * 0.01).collect();
        let mut value = 0.0;
        for _ in 0..500 {
            let mut next: Vec<f64> = (0..width).map(|i| (0..width).map(|j| cov[i * width + j] * v[j]).sum()).collect();
            let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
            next.iter_mut().for_each(|x| *x /= norm);
            value = norm;
            v = next;
        }
        // Deflate: the next component is the leading one of what is left.
        for i in 0..width {
            for j in 0..width {
                cov[i * width + j] -= value * v[i] * v[j];
            }
        }
        found.push((v, value));
    }
    let [(a, va), (b, vb)]: [(Vec<f64>, f64); 2] = found.try_into().unwrap_or_else(|_| unreachable!("two found"));
    ([a, b], [va / total, vb / total])
}

fn render(
    rgb: &mut [u8],
    (xy, axes): (&[(f32, f32)], &[String; 2]),
    labels: &[u8],
    names: &[String],
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let range = |pick: fn(&(f32, f32)) -> f32| {
        let (lo, hi) = xy.iter().map(pick).fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(range(|p| p.0), range(|p| p.1))?;
    chart.configure_mesh().x_desc(&axes[0]).y_desc(&axes[1]).label_style(("sans-serif", 13)).draw()?;
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(1);
    for class in 0..classes {
        let color = Palette99::pick(class).to_rgba();
        let points = xy.iter().zip(labels).filter(|(_, &l)| l as usize == class).map(|(&p, _)| p);
        let name = names.get(class).cloned().unwrap_or_else(|| class.to_string());
        chart
            .draw_series(points.map(|p| Circle::new(p, 2, color.filled())))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
