//! shaders/table.wgsl: the per-datapoint table's gather and sparse Adam.
use crate::common::*;
use wgvae::launches::Table;

#[test]
fn table_kernels_should_match_reference() {
    use wgvae::reference::table as rt;
    let (images, width) = (29, 14);
    let p = TableParams {
        batch: B as u32,
        width: width as u32,
        pass_rows: 25,
        updates_per_step: 3,
        update_index: 1,
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        pad: [0; 3],
    };
    let order: Vec<u32> = (0..images as u32).map(|i| (i * 11) % images as u32).collect();
    let c = counters(2, 13); // rows 13..26 of the pass: the last one is padding (pass_rows 25)
    let (table, m, v) = (
        random(images * width, 94, 1.0),
        random(images * width, 95, 0.1),
        random(images * width, 96, 0.1).iter().map(|x| x * x).collect::<Vec<_>>(),
    );
    let dmulv = random(B * width, 97, 1.0);
    let u = uniform(&p);
    let cb = gpu::storage_with(&gpu().0, "c", &[c]);
    let ob = gpu::storage_with(&gpu().0, "order", &order);
    let (tb, mb, vb, db, xb) =
        (storage(&table), storage(&m), storage(&v), storage(&dmulv), storage(&vec![7.0; B * width]));
    let rows = Table { table: &tb, m: &mb, v: &vb, order: &ob, counters: &cb };
    run(rows.gather(launcher(), &u, &xb, B * width));
    assert_close("gather_table_rows", &read(&xb, B * width), &rt::gather_table_rows(&p, &table, &order, &c), 0.0);
    run(rows.adam_step(launcher(), &u, &db, B * width));
    let (mut wt, mut wm, mut wv) = (table.clone(), m.clone(), v.clone());
    rt::table_adam_step(&p, &mut wt, &mut wm, &mut wv, &dmulv, &order, &c);
    assert_close("table_adam_step table", &read(&tb, images * width), &wt, 1e-6);
    assert_close("table_adam_step m", &read(&mb, images * width), &wm, 1e-6);
    assert_close("table_adam_step v", &read(&vb, images * width), &wv, 1e-6);
    let untouched =
        (0..images).filter(|&i| wt[i * width..(i + 1) * width] == table[i * width..(i + 1) * width]).count();
    assert_eq!(untouched, images - 12, "only the batch's 12 real rows change");
}
