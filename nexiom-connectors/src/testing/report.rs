//! [`ContractReport`]: the outcome of a suite run.

/// The outcome of a suite run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractReport {
    /// Harness name.
    pub harness: String,
    /// Checks that passed.
    pub passed: Vec<String>,
    /// Checks that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Checks skipped (not applicable to the platform), with the reason.
    pub skipped: Vec<(String, String)>,
}

impl ContractReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// Panics, listing the failures, unless every check passed (for tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.is_ok() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(name, why)| format!("  - {name}: {why}"))
                .collect();
            panic!(
                "contract suite failed for {} ({} passed):\n{}",
                self.harness,
                self.passed.len(),
                list.join("\n")
            );
        }
    }
}
