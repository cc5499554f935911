//! [`ConnectorRegistry`]: connectors by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connector::PlatformConnector;
use crate::error::ConnectorError;

/// Connectors by their [`name`](PlatformConnector::name), so code can write
/// `registry.get("whatsapp")?.publish(..)`. Cheap to clone (the map is
/// shared; registering into a clone copies it first), so it can sit in a
/// web framework's per-request state.
///
/// ```
/// use std::sync::Arc;
/// use nexiom_connectors::{ConnectorError, ConnectorRegistry, MockConnector};
/// use nexiom_core::Platform;
///
/// let mut registry = ConnectorRegistry::new();
/// registry.register(Arc::new(MockConnector::new(Platform::WhatsApp)));
/// assert_eq!(registry.get("whatsapp").unwrap().name(), "whatsapp");
/// assert!(matches!(registry.get("myspace"), Err(ConnectorError::UnknownConnector { .. })));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectorRegistry {
    connectors: Arc<BTreeMap<String, Arc<dyn PlatformConnector>>>,
}

impl ConnectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ConnectorRegistry::default()
    }

    /// Adds (or replaces) a connector under its name; returns the one it replaced.
    pub fn register(
        &mut self,
        connector: Arc<dyn PlatformConnector>,
    ) -> Option<Arc<dyn PlatformConnector>> {
        Arc::make_mut(&mut self.connectors).insert(connector.name().to_owned(), connector)
    }

    /// The same registry with `connector` added.
    pub fn with(mut self, connector: Arc<dyn PlatformConnector>) -> Self {
        self.register(connector);
        self
    }

    /// The connector named `name`, or [`ConnectorError::UnknownConnector`].
    pub fn get(&self, name: &str) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        self.connectors
            .get(name)
            .cloned()
            .ok_or_else(|| ConnectorError::UnknownConnector {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.connectors.keys().cloned().collect()
    }

    /// Whether no connector is registered.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockConnector;
    use nexiom_core::Platform;

    #[test]
    fn unknown_name_is_a_typed_error_listing_known_ones() {
        let registry = ConnectorRegistry::new()
            .with(Arc::new(MockConnector::new(Platform::Facebook)))
            .with(Arc::new(MockConnector::new(Platform::LinkedIn)));
        assert_eq!(registry.names(), vec!["facebook", "linkedin"]);
        match registry.get("whatsapp") {
            Err(ConnectorError::UnknownConnector { name, known }) => {
                assert_eq!(name, "whatsapp");
                assert_eq!(known, "facebook, linkedin");
            }
            other => panic!("expected UnknownConnector, got {other:?}"),
        }
        assert!(registry.get("facebook").is_ok());
    }
}
