//! "Share to Hub" for a model folder: the login state, a repo name, a push.
//! Who is logged in and the push are [`whoami`] and [`push`]; the owner runs
//! them on worker threads when [`ShareBox::show`] asks, and hands back the answers.

use std::path::{Path, PathBuf};

use eframe::egui;

use crate::hub::HubSettings;

/// What [`ShareBox::show`] asks its owner to do.
pub enum ShareEvent {
    /// Find who is logged in ([`whoami`]); the answer goes to [`ShareBox::user`].
    WhoAmI,
    /// Check the token with the Hub and save it ([`login`]); the answer goes to [`ShareBox::user`].
    Login(String),
    /// Push the model folder ([`push`]); the answer goes to [`ShareBox::pushed`].
    Push {
        /// The model folder.
        dir: PathBuf,
        /// The repo, `user/name`.
        repo: String,
        /// A private repo.
        private: bool,
    },
}

/// Who is logged in on the Hub (on a worker thread).
pub fn whoami(hub: &HubSettings) -> Result<String, String> {
    crate::share::whoami_on(hub).map_err(|e| in_words(&e))
}

/// A sharing error in the app's words (the log-in box below replaces `vidi login`).
fn in_words(e: &crate::share::ShareError) -> String {
    use crate::share::ShareError;
    match e {
        ShareError::NotLoggedIn => "not logged in to the Hugging Face Hub yet".into(),
        ShareError::BadToken { endpoint } => format!("the Hub at {endpoint} refused the token: paste a valid one"),
        e => e.to_string(),
    }
}

/// Checks `token` with the Hub and saves it where the Hub's tools look (on a worker thread);
/// returns the account.
pub fn login(hub: &HubSettings, token: &str) -> Result<String, String> {
    crate::share::login_on(token, hub).map(|(user, _)| user).map_err(|e| in_words(&e))
}

/// Pushes `dir` to `repo` (on a worker thread); says where it went.
pub fn push(hub: &HubSettings, dir: &Path, repo: &str, private: bool) -> Result<String, String> {
    let opts = crate::share::PushOptions { private, ..Default::default() };
    crate::share::push_on(hub, dir, repo, &opts, None)
        .map(|r| format!("pushed to {} (use it: vidi classify --model {})", r.url, r.repo))
        .map_err(|e| e.to_string())
}

/// The box's state.
#[derive(Default)]
pub struct ShareBox {
    user: Option<Result<String, String>>,
    repo: String,
    private: bool,
    /// The token being typed into the login dialog (never shown).
    token: String,
    result: Option<Result<String, String>>,
}

impl ShareBox {
    /// Who is logged in, or why that is not known.
    pub fn user(&mut self, u: Result<String, String>) {
        self.user = Some(u);
    }

    /// How the push went.
    pub fn pushed(&mut self, r: Result<String, String>) {
        self.result = Some(r);
    }

    /// Draws the box for `model_dir` (nothing unless it holds a model).
    /// `busy`: a lookup or a push runs.
    pub fn show(&mut self, ui: &mut egui::Ui, model_dir: &Path, busy: bool) -> Option<ShareEvent> {
        if !model_dir.join("config.json").is_file() {
            return None;
        }
        let mut event = None;
        let mut busy = busy;
        ui.separator();
        ui.strong("Share to Hub");
        if self.user.is_none() && !busy {
            busy = true;
            event = Some(ShareEvent::WhoAmI);
        }
        match &self.user {
            Some(Ok(u)) => {
                ui.label(format!("logged in as {u}"));
                if self.repo.is_empty() {
                    let name = model_dir
                        .parent()
                        .and_then(|p| p.file_name())
                        .or(model_dir.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "my-video-classifier".into());
                    self.repo = format!("{u}/{name}");
                }
            }
            Some(Err(e)) => {
                ui.label(format!("{e}. Log in with a Hub access token:"));
                ui.horizontal(|ui| {
                    let l = ui.label("Hub token");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.token)
                            .password(true)
                            .hint_text("hf_... (huggingface.co/settings/tokens, with write access)")
                            .desired_width(300.0),
                    )
                    .labelled_by(l.id);
                    if ui.add_enabled(!busy && !self.token.trim().is_empty(), egui::Button::new("Log in")).clicked() {
                        busy = true;
                        event = Some(ShareEvent::Login(std::mem::take(&mut self.token)));
                    }
                });
            }
            None => {
                ui.spinner();
            }
        }
        ui.horizontal(|ui| {
            super::labelled_text(ui, "repo", &mut self.repo, "user/name", 300.0);
            ui.checkbox(&mut self.private, "private");
            let can = !busy && matches!(self.user, Some(Ok(_))) && self.repo.contains('/');
            if ui.add_enabled(can, egui::Button::new("Share to Hub")).clicked() {
                busy = true;
                event = Some(ShareEvent::Push {
                    dir: model_dir.to_path_buf(),
                    repo: self.repo.clone(),
                    private: self.private,
                });
            }
        });
        if busy {
            ui.spinner();
        }
        match &self.result {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => super::error_text(ui, e),
            None => {}
        }
        event
    }
}
