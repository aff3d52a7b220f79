//! wgvae in a web page: the wgvae crate's session, trainer, launch lists and checkpoint format,
//! driven from JavaScript through the browser's WebGPU. Only the edges are here: flags arrive as
//! strings, data as the bytes of the embedded set's files, pictures leave as ImageData and
//! checkpoints as safetensors bytes. Every wait on the GPU is a future the page's event loop
//! resolves, so the page never blocks.
mod run;

use wasm_bindgen::prelude::*;

pub use run::WebRun;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
    /// The page's handler for a panic, which only a bug in wgvae raises: GPU failures (a lost
    /// device, an error no check caught) come back from every method as a rejected Promise.
    #[wasm_bindgen(js_name = wgvaeFatal)]
    fn fatal(message: &str);
}

#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| info.to_string()),
        };
        error(&format!("wgvae: {info}"));
        fatal(&message);
    }));
}

/// An anyhow error as the page shows it: the whole chain on one line.
pub(crate) fn js_error(e: anyhow::Error) -> JsError {
    JsError::new(&format!("{e:#}"))
}

/// The standard normal's quantile function: where the explorer's pointer on the manifold maps
/// to z, on the axes `manifold` draws.
#[wasm_bindgen]
pub fn normal_quantile(p: f64) -> f64 {
    wgvae::draws::inverse_normal_cdf(p)
}
