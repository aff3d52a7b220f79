//! What folder.rs and cache.rs share: how a folder's images become the model's input, and the
//! listing of one split's files (the cache's key is made of both).
use std::path::PathBuf;

/// Grey (one channel) or RGB (three); Auto is RGB when any image has colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorMode {
    #[default]
    Auto,
    Grey,
    Rgb,
}

/// How a folder's images become the model's input.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FolderOptions {
    /// (height, width) to resize every image to; None keeps the images' own (they must agree).
    pub size: Option<(usize, usize)>,
    pub color: ColorMode,
    /// Skip images that fail to decode (reporting how many) instead of stopping.
    pub skip_bad: bool,
}

/// The image files of one split, with their labels.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<(PathBuf, u8)>,
    /// The class folder names, sorted (labels are their positions); None for a flat folder.
    pub classes: Option<Vec<String>>,
    /// Files that are not images by their extension, and images beside class folders.
    pub ignored: usize,
}
