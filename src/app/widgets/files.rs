//! Paths in and out: a path field with a Browse… button, file dialogs on a
//! worker thread (the UI goes on drawing), a save button and the saving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use eframe::egui;
use poll_promise::Promise;

/// What a Browse… button picks.
#[derive(Clone, Copy, PartialEq)]
pub enum Pick {
    /// A folder.
    Folder,
    /// Video files.
    Files,
    /// An annotation or list file (CSV, JSON, text lists).
    List,
}

/// Annotation and list file name endings: what a dropped file must end with to
/// open as a dataset rather than be classified.
pub const LIST_EXTENSIONS: [&str; 3] = ["csv", "txt", "json"];

/// Whether `path` names an annotation or list file (by its ending).
pub fn is_list_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| LIST_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Video file name endings the dialogs offer.
const VIDEO_EXTENSIONS: [&str; 12] =
    ["mp4", "avi", "mkv", "webm", "mov", "m4v", "mpg", "mpeg", "ogv", "flv", "3gp", "wmv"];

/// A labelled path field with a Browse… button (`key` tells the app's dialogs
/// apart) that fills it with the folder or the first file picked. Returns the
/// text field's response.
pub fn path_field(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    hint: &str,
    key: &str,
    pick: Pick,
) -> egui::Response {
    ui.horizontal(|ui| {
        let r = super::labelled_text(ui, label, value, hint, 420.0);
        if let Some(p) = browse(ui, key, pick).into_iter().next() {
            *value = p.to_string_lossy().into_owned();
        }
        r
    })
    .inner
}

/// What a dialog picked, and whether it seems never to have opened.
type Picked = (Vec<PathBuf>, bool);

/// A dialog in flight, kept in egui's memory between frames.
type Pending = Arc<Mutex<Option<Promise<Picked>>>>;

/// A button that runs a file dialog on a worker thread (the UI goes on
/// drawing); on a later frame, returns what `dialog` picked and whether the
/// dialog seems never to have opened (no portal, no zenity). `key` tells the
/// app's buttons apart.
fn dialog_button(
    ui: &mut egui::Ui,
    key: &str,
    label: &str,
    enabled: bool,
    dialog: impl FnOnce() -> Vec<PathBuf> + Send + 'static,
) -> Option<Picked> {
    let id = egui::Id::NULL.with(("vidi-dialog", key));
    let pending: Pending = ui.data_mut(|d| d.get_temp_mut_or_default::<Pending>(id).clone());
    let Ok(mut slot) = pending.lock() else { return None };
    if ui.add_enabled(enabled && slot.is_none(), egui::Button::new(label)).clicked() {
        let ctx = ui.ctx().clone();
        *slot = Some(Promise::spawn_thread("vidi-file-dialog", move || {
            let t0 = std::time::Instant::now();
            let picked = dialog();
            // A dialog that "closed" at once most likely never opened.
            let never_opened = picked.is_empty() && t0.elapsed() < std::time::Duration::from_millis(400);
            // After the promise has its value (just after this returns).
            ctx.request_repaint_after(std::time::Duration::from_millis(10));
            (picked, never_opened)
        }));
    }
    match slot.take()?.try_take() {
        Ok(done) => Some(done),
        Err(waiting) => {
            *slot = Some(waiting);
            None
        }
    }
}

/// A "Browse…" button for folders or video files; returns what was picked, on a later frame.
pub fn browse(ui: &mut egui::Ui, key: &str, pick: Pick) -> Vec<PathBuf> {
    pick_button(ui, key, "Browse…", true, pick)
}

/// A button labelled `label` that runs a file dialog for `pick` on a worker
/// thread; returns what was picked, on a later frame.
pub fn pick_button(ui: &mut egui::Ui, key: &str, label: &str, enabled: bool, pick: Pick) -> Vec<PathBuf> {
    let hint_id = egui::Id::NULL.with(("vidi-dialog-hint", key));
    let done = dialog_button(ui, key, label, enabled, move || {
        let dialog = rfd::FileDialog::new();
        match pick {
            Pick::Folder => dialog.pick_folder().into_iter().collect(),
            Pick::Files => dialog
                .add_filter("videos", &VIDEO_EXTENSIONS)
                .add_filter("all files", &["*"])
                .pick_files()
                .unwrap_or_default(),
            Pick::List => dialog
                .add_filter("annotations and lists", &LIST_EXTENSIONS)
                .add_filter("all files", &["*"])
                .pick_file()
                .into_iter()
                .collect(),
        }
    });
    if let Some((picked, never_opened)) = done {
        ui.data_mut(|d| d.insert_temp(hint_id, never_opened));
        return picked;
    }
    if ui.data(|d| d.get_temp::<bool>(hint_id)).unwrap_or(false) {
        ui.label(
            "No file dialog here (install xdg-desktop-portal-gtk or zenity): type the path, or drop it on the window.",
        );
    }
    Vec::new()
}

/// The first of `name`, `stem-2.ext`, `stem-3.ext`... that names nothing in `dir`.
pub fn free_name(dir: &Path, name: &str) -> String {
    let p = Path::new(name);
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.to_string());
    let ext = p.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    std::iter::once(name.to_string())
        .chain((2..10_000).map(|i| format!("{stem}-{i}{ext}")))
        .find(|n| !dir.join(n).exists())
        .unwrap_or_else(|| name.to_string())
}

/// A "Save as…" button: asks where to save (a save dialog on a worker thread,
/// opening in `fallback_dir` with a default name that overwrites nothing there:
/// `name`, else `name-2`...); where no dialog can open, saves into `fallback_dir`
/// under that name. Returns the path on a later frame.
pub fn save_button(ui: &mut egui::Ui, label: &str, enabled: bool, name: &str, fallback_dir: &Path) -> Option<PathBuf> {
    let file = free_name(fallback_dir, name);
    let (dir, default) = (fallback_dir.to_path_buf(), file.clone());
    let (picked, never_opened) = dialog_button(ui, label, label, enabled, move || {
        let mut dialog = rfd::FileDialog::new().set_file_name(default);
        if dir.is_dir() {
            dialog = dialog.set_directory(&dir);
        }
        dialog.save_file().into_iter().collect()
    })?;
    match picked.into_iter().next() {
        Some(p) => Some(p),
        None if never_opened => Some(fallback_dir.join(free_name(fallback_dir, &file))),
        None => None,
    }
}

/// Creates the folder `path` will go in (the fallback export folder may not exist yet).
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or(Ok(()), std::fs::create_dir_all)
}

/// Writes `text` to `path` (atomically; its folder is created) and says what happened.
pub fn save_text(path: &Path, text: &str) -> String {
    match create_parent(path).and_then(|()| crate::util::write_atomic(path, text.as_bytes())) {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => format!("{}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::free_name;

    #[test]
    fn a_default_save_name_overwrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "vidi-classify.csv"), "vidi-classify.csv");
        std::fs::write(dir.path().join("vidi-classify.csv"), "a").unwrap();
        std::fs::write(dir.path().join("vidi-classify-2.csv"), "b").unwrap();
        assert_eq!(free_name(dir.path(), "vidi-classify.csv"), "vidi-classify-3.csv");
        std::fs::write(dir.path().join("notes"), "c").unwrap();
        assert_eq!(free_name(dir.path(), "notes"), "notes-2");
    }
}
