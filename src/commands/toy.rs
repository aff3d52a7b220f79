//! The `toy` command: seed 004's worked example, REINFORCE against the reparameterization gradient
//! on F(theta) = E_{z ~ N(a theta + b, 1)}[z^2]; as a table, toy.csv and toy.png.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

use crate::files::write_atomic;
use crate::gpu::{DeviceChoice, Gpu, Kernels};
use crate::toy::{Problem, ToyRun, ESTIMATORS};

pub struct ToyOptions {
    pub problem: Problem,
    /// theta_0: where SGD starts and the single-draw statistics are measured.
    pub theta: f32,
    /// Draws per gradient estimate.
    pub samples: usize,
    pub steps: usize,
    pub lr: f32,
    pub seed: u32,
    /// Folder for toy.csv and toy.png [default: runs/toy-<unix time>].
    pub out: Option<PathBuf>,
    pub device: DeviceChoice,
}

pub fn toy(args: &ToyOptions) -> Result<()> {
    if args.samples < 2 {
        bail!("--samples {}: a variance needs at least 2 draws", args.samples);
    }
    let out = args.out.clone().unwrap_or_else(|| super::timestamped_run_dir("toy"));
    let gpu = Gpu::open(&args.device)?;
    let kernels = Kernels::new(&gpu);
    println!("adapter: {}", gpu.describe());
    let (p, theta0) = (args.problem, args.theta as f64);
    println!(
        "F(theta) = E[z^2], z ~ N({} theta + {}, 1); theta_0 = {}; {} draws per estimate; {} SGD steps at lr {}",
        p.a, p.b, args.theta, args.samples, args.steps, args.lr
    );
    let started = Instant::now();
    let run = crate::toy::run(&gpu, &kernels, p, args.theta, (args.samples, args.steps), args.lr, args.seed)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(step) = run.trajectory.iter().position(|t| !t.iter().all(|v| v.is_finite() && v.abs() < 1e15)) {
        bail!(
            "theta diverged at step {step}: SGD on F is stable only for --lr below 1 / a^2 = {:.4} (given {})",
            1.0 / (p.a as f64).powi(2),
            args.lr
        );
    }
    let last = run.trajectory.last().copied().unwrap_or([args.theta; 2]);
    println!(
        "{:<19} {:>8} {:>11} {:>12} {:>11} {:>12} {:>12}",
        "estimator", "theta0", "grad_mean", "grad_var", "exact_grad", "exact_var", "theta_final"
    );
    let mut csv = String::from("estimator,theta0,grad_mean,grad_var,exact_grad,theta_final\n");
    for (e, name) in ESTIMATORS.iter().enumerate() {
        let (mean, var) = run.moments[0][e];
        let exact = p.exact_grad(theta0);
        println!(
            "{name:<19} {:>8.3} {mean:>11.4} {var:>12.4} {exact:>11.4} {:>12.4} {:>12.5}",
            args.theta,
            p.variance(e, theta0),
            last[e]
        );
        csv += &format!("{name},{},{mean},{var},{exact},{}\n", args.theta, last[e]);
    }
    println!("optimum -b/a = {:.5}; {:.2} s on the GPU", p.optimum(), seconds);
    std::fs::create_dir_all(&out).map_err(|e| anyhow!("--out {}: cannot create it ({e})", out.display()))?;
    write_atomic(&out.join("toy.csv"), csv.as_bytes())?;
    draw(&out.join("toy.png"), &run, args)?;
    println!("wrote {}/toy.csv and toy.png", out.display());
    Ok(())
}

/// theta against the step for both estimators, and the optimum -b/a.
fn draw(path: &Path, run: &ToyRun, args: &ToyOptions) -> Result<()> {
    crate::curves::register_font();
    let size = (1300u32, 500u32);
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    render(&mut rgb, size, run, args).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_png(path, &rgb, size, image::ExtendedColorType::Rgb8)
}

fn render(rgb: &mut [u8], size: (u32, u32), run: &ToyRun, args: &ToyOptions) -> Result<(), Box<dyn std::error::Error>> {
    let p = args.problem;
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("SGD on E[z²], z ~ N({} θ + {}, 1): {} draws per step, lr {}", p.a, p.b, args.samples, args.lr),
        ("sans-serif", 20),
    )?;
    let panels = root.split_evenly((1, 2));
    let optimum = p.optimum() as f32;
    let values = run.trajectory.iter().flatten().copied().chain([optimum]);
    let (lo, hi) = values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("θ", ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f32..run.trajectory.len().saturating_sub(1).max(1) as f32, (lo - pad)..(hi + pad))?;
    chart.configure_mesh().x_desc("SGD step").y_desc("θ").label_style(("sans-serif", 13)).draw()?;
    let steps = run.trajectory.len().saturating_sub(1).max(1) as f32;
    chart
        .draw_series(LineSeries::new([(0.0, optimum), (steps, optimum)], BLACK.mix(0.5).stroke_width(1)))?
        .label(format!("optimum -b/a = {optimum:.3}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    for (e, (name, color)) in ESTIMATORS.iter().zip([RED, BLUE]).enumerate() {
        let line = run.trajectory.iter().enumerate().map(|(s, t)| (s as f32, t[e]));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;

    // The same runs as distance to the optimum: each estimator's noise floor shows.
    let distance: Vec<[f32; 2]> =
        run.trajectory.iter().map(|t| t.map(|v| (v - optimum).abs().max(1e-6 * optimum.abs().max(1.0)))).collect();
    let (dlo, dhi) = distance.iter().flatten().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("|θ − (−b/a)|, log scale", ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f32..steps, (dlo * 0.5..dhi * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("SGD step")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (e, color) in [RED, BLUE].into_iter().enumerate() {
        let line = distance.iter().enumerate().map(|(s, d)| (s as f32, d[e]));
        chart.draw_series(LineSeries::new(line, color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}
