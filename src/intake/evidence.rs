//! Evidence as only bounded parsing makes it: from an attachment of a
//! parsed message, or a file an unlock extracted from an archive. Its
//! fields are private and there is no other constructor, so holding an
//! `Evidence` is proof that its bytes came through the parse workers'
//! bounds and were typed by their content, not by what the sender claimed.
//! The store takes nothing else as evidence.

use super::analysis::{AttachmentFacts, OpenedFile};
use super::mime::Attachment;
use crate::model::archive::ArchiveInfo;

#[derive(Debug, Clone)]
pub struct Evidence {
    screenshot: bool,
    opened: bool,
    archive: Option<ArchiveInfo>,
    name: Option<String>,
    declared_type: String,
    sniffed_type: Option<String>,
    forwarded: bool,
    data: Vec<u8>,
}

impl Evidence {
    /// An attachment of a parsed message, with what its bytes showed.
    pub fn of_attachment(at: &Attachment, facts: &AttachmentFacts) -> Evidence {
        Evidence {
            screenshot: facts.sniffed.is_some(),
            opened: false,
            archive: facts.archive.clone(),
            name: at.name.clone(),
            declared_type: at.declared_type.clone(),
            sniffed_type: facts.sniffed.clone(),
            forwarded: at.forwarded,
            data: at.data.clone(),
        }
    }

    /// A file an unlock extracted (a nested archive was opened with it).
    pub fn of_extracted(f: OpenedFile) -> Evidence {
        Evidence {
            screenshot: f.sniffed.is_some(),
            opened: f.archive.is_some(),
            archive: f.archive,
            name: Some(f.name),
            declared_type: "application/octet-stream".into(),
            sniffed_type: f.sniffed,
            forwarded: false,
            data: f.data,
        }
    }

    /// A symbolic link found in an archive: recorded by name, never
    /// followed, no content.
    pub fn of_symlink(name: String) -> Evidence {
        Evidence {
            screenshot: false,
            opened: false,
            archive: None,
            name: Some(name),
            declared_type: "inode/symlink".into(),
            sniffed_type: None,
            forwarded: false,
            data: Vec::new(),
        }
    }

    /// An image, by its bytes.
    pub fn screenshot(&self) -> bool {
        self.screenshot
    }

    /// An archive already extracted with its parent.
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// What inspection found, for zip and 7z.
    pub fn archive(&self) -> Option<&ArchiveInfo> {
        self.archive.as_ref()
    }

    /// An encrypted archive still to open: it holds the case.
    pub fn locked(&self) -> bool {
        self.archive.as_ref().is_some_and(ArchiveInfo::is_encrypted) && !self.opened
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn declared_type(&self) -> &str {
        &self.declared_type
    }

    pub fn sniffed_type(&self) -> Option<&str> {
        self.sniffed_type.as_deref()
    }

    pub fn forwarded(&self) -> bool {
        self.forwarded
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }
}
