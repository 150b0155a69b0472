//! The organisations' decryption keys as the cases service offers them:
//! their state, unlocking a passphrase-protected OpenPGP key for the
//! running service (then the reports that waited for it are decrypted),
//! and the public key to publish. Every door (the control socket the CLI
//! uses, the admin page) comes here.

use super::CaseError;
use super::principal::{Principal, Scope};
use super::service::Cases;
use crate::keyring::KeyError;
use crate::store::audit::{self, AuditAction, Entry};
use crate::store::crypto;
use serde::Serialize;
use zeroize::Zeroizing;

/// One organisation's OpenPGP key, as ops see it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub org: String,
    pub fingerprint: String,
    /// Passphrase-protected and not unlocked: encrypted reports wait.
    pub locked: bool,
}

/// What an unlock did.
#[derive(Debug, Clone, Serialize)]
pub struct Unlocked {
    pub org: String,
    pub fingerprint: String,
    /// Reports queued again for decryption.
    pub requeued: u64,
}

impl Cases {
    /// The OpenPGP keys of the organisations `p` may see.
    pub fn key_status(&self, p: &Principal) -> Vec<KeyStatus> {
        self.policies
            .iter()
            .filter(|pol| p.may_see(&pol.id))
            .filter_map(|pol| {
                let (fingerprint, locked) = self.keyring.openpgp_status(&pol.id)?;
                Some(KeyStatus {
                    org: pol.id.clone(),
                    fingerprint,
                    locked,
                })
            })
            .collect()
    }

    /// The organisation's public OpenPGP key (armored), to publish.
    pub fn public_key(&self, org: &str) -> Option<&str> {
        self.keyring.public_key(org)
    }

    /// Unlocks `org`'s OpenPGP key with `passphrase` for this process and
    /// queues the reports that waited for it. Only an operator or an
    /// admin; the passphrase is checked against the key, kept in memory
    /// only, and never written to the audit trail, the log or the store.
    pub async fn unlock_key(
        &self,
        p: &Principal,
        org: &str,
        passphrase: Zeroizing<String>,
    ) -> Result<Unlocked, CaseError> {
        if p.scope != Scope::All {
            return Err(CaseError::OperatorOnly);
        }
        let Some((fingerprint, _)) = self.keyring.openpgp_status(org) else {
            return Err(CaseError::NoKey(org.to_owned()));
        };
        let who = p.who();
        let audit = |action, detail: String| async move {
            let entry = Entry {
                actor: who.actor,
                action,
                target: org,
                source: who.source,
                detail: &detail,
            };
            audit::record_now(&self.store, &entry).await
        };
        match self.keyring.unlock(org, passphrase) {
            Ok(()) => {}
            Err(KeyError::Passphrase(_)) => {
                let detail = format!("OpenPGP key {fingerprint}: wrong passphrase");
                audit(AuditAction::KeyUnlockFailed, detail).await?;
                return Err(CaseError::WrongPassphrase(org.to_owned()));
            }
            Err(_) => return Err(CaseError::NoKey(org.to_owned())),
        }
        let requeued = crypto::requeue_awaiting_key(self.store.pool(), org).await?;
        let detail = format!("OpenPGP key {fingerprint}; {requeued} report(s) queued to decrypt");
        audit(AuditAction::KeyUnlocked, detail).await?;
        Ok(Unlocked {
            org: org.to_owned(),
            fingerprint,
            requeued,
        })
    }
}

impl super::Cases {
    /// Re-reads the store's master keys from their files (a rotation's
    /// `keys rotate` asks the running service through the control socket):
    /// every part of the service then seals with the new key and opens with
    /// the old ones still kept. Returns (current key id, retired ids kept).
    pub fn reload_master_key(&self) -> Result<(String, Vec<String>), CaseError> {
        let sealer = self.store.sealer();
        let id = sealer
            .reload()
            .map_err(|e| CaseError::Store(crate::store::StoreError::from(e)))?;
        tracing::info!(key = %id, retired_kept = sealer.older_key_ids().len(), "master key reloaded");
        Ok((id, sealer.older_key_ids()))
    }
}
