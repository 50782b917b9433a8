//! Errors found while building a [`Relabeler`](super::Relabeler): one per rule, naming the
//! rule's index in the list and the offending value.

use super::config::Action;

/// A relabeling rule that Prometheus would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("rule {rule}: {name:?} is not a valid source label")]
    InvalidSourceLabel { rule: usize, name: String },

    /// `reason` is the `regex` crate's explanation.
    #[error("rule {rule}: invalid regex {regex:?}: {reason}")]
    InvalidRegex { rule: usize, regex: String, reason: String },

    #[error("rule {rule}: relabel action hashmod requires a non-zero modulus")]
    ZeroModulus { rule: usize },

    #[error("rule {rule}: \"target_label\" is required for action \"{action}\"")]
    MissingTargetLabel { rule: usize, action: Action },

    #[error("rule {rule}: {target:?} is not a valid target label")]
    InvalidTargetLabel { rule: usize, action: Action, target: String },

    #[error("rule {rule}: \"replacement\" cannot be set for action \"{action}\"")]
    ReplacementNotAllowed { rule: usize, action: Action },

    #[error("rule {rule}: {replacement:?} is not a valid replacement for action \"labelmap\"")]
    InvalidLabelMapReplacement { rule: usize, replacement: String },

    /// `keepequal` / `dropequal` accept only `source_labels` and `target_label`; `labeldrop` /
    /// `labelkeep` only `regex`. `field` is the first other field that differs from its default.
    #[error("rule {rule}: action \"{action}\" does not accept \"{field}\" (only {allowed})")]
    FieldNotAllowed { rule: usize, action: Action, field: &'static str, allowed: &'static str },
}

impl RelabelError {
    /// The index of the offending rule.
    pub fn rule(&self) -> usize {
        match self {
            RelabelError::InvalidSourceLabel { rule, .. }
            | RelabelError::InvalidRegex { rule, .. }
            | RelabelError::ZeroModulus { rule }
            | RelabelError::MissingTargetLabel { rule, .. }
            | RelabelError::InvalidTargetLabel { rule, .. }
            | RelabelError::ReplacementNotAllowed { rule, .. }
            | RelabelError::InvalidLabelMapReplacement { rule, .. }
            | RelabelError::FieldNotAllowed { rule, .. } => *rule,
        }
    }
}
