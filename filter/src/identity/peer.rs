//! The downstream mTLS peer as the filter sees it: Envoy's `connection.*` attributes, and the
//! XFCC element Envoy wrote for this connection when the first URI SAN is not a SPIFFE ID.

use super::spiffe::parse_spiffe_id;
use super::subject::subject_attr;
use super::xfcc::XfccElement;
use crate::source::PeerField;

/// Raw peer-certificate attributes for one request. Every field may be absent (no mTLS).
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    /// `connection.uri_san_peer_certificate`: the first URI SAN only.
    pub uri_san: Option<String>,
    /// `connection.subject_peer_certificate` (RFC 2253).
    pub subject: Option<String>,
    /// `connection.dns_san_peer_certificate`: the first DNS SAN only.
    pub dns_san: Option<String>,
    /// `connection.sha256_peer_certificate_digest` (64 hex digits).
    pub fingerprint: Option<String>,
    /// The last element of `x-forwarded-client-cert`, when present.
    pub xfcc: Option<XfccElement>,
}

impl PeerCert {
    /// The SPIFFE ID: the first URI SAN if it is one; otherwise the first SPIFFE URI among all
    /// the SANs Envoy listed in XFCC, provided that element describes this very certificate
    /// (its `Hash` equals the connection's digest).
    pub fn spiffe_id(&self) -> Option<String> {
        if let Some(uri) = self.uri_san.as_deref().filter(|u| parse_spiffe_id(u).is_some()) {
            return Some(uri.to_string());
        }
        let element = self.xfcc.as_ref()?;
        let digest = self.fingerprint.as_deref()?;
        if !element.hash.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(digest)) {
            return None;
        }
        element.uris.iter().find(|u| parse_spiffe_id(u).is_some()).cloned()
    }

    /// The value of one `peer:` field.
    pub fn field(&self, field: PeerField) -> Option<String> {
        let spiffe = || self.spiffe_id();
        match field {
            PeerField::SpiffeId => spiffe(),
            PeerField::SpiffeTrustDomain => {
                spiffe().and_then(|s| parse_spiffe_id(&s).map(|id| id.trust_domain.to_string()))
            }
            PeerField::SpiffeNamespace => {
                spiffe().and_then(|s| parse_spiffe_id(&s).and_then(|id| id.namespace().map(str::to_string)))
            }
            PeerField::SpiffeServiceAccount => {
                spiffe().and_then(|s| parse_spiffe_id(&s).and_then(|id| id.service_account().map(str::to_string)))
            }
            PeerField::Subject => self.subject.clone(),
            PeerField::SubjectCn => self.subject.as_deref().and_then(|s| subject_attr(s, "CN")),
            PeerField::SubjectOu => self.subject.as_deref().and_then(|s| subject_attr(s, "OU")),
            PeerField::SubjectO => self.subject.as_deref().and_then(|s| subject_attr(s, "O")),
            PeerField::DnsSan => self.dns_san.clone(),
            PeerField::UriSan => self.uri_san.clone(),
            PeerField::Fingerprint => self.fingerprint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::xfcc::last_element;

    fn cert() -> PeerCert {
        PeerCert {
            uri_san: Some("spiffe://example.org/ns/team-a/sa/billing-bot".into()),
            subject: Some("CN=billing-bot,OU=Team A,O=Example Corp,C=US".into()),
            dns_san: Some("billing-bot.team-a.svc".into()),
            fingerprint: Some("714a".into()),
            xfcc: None,
        }
    }

    #[test]
    fn fields_from_a_spiffe_certificate() {
        let c = cert();
        assert_eq!(c.field(PeerField::SpiffeTrustDomain).as_deref(), Some("example.org"));
        assert_eq!(c.field(PeerField::SpiffeNamespace).as_deref(), Some("team-a"));
        assert_eq!(c.field(PeerField::SpiffeServiceAccount).as_deref(), Some("billing-bot"));
        assert_eq!(c.field(PeerField::SubjectCn).as_deref(), Some("billing-bot"));
        assert_eq!(c.field(PeerField::SubjectOu).as_deref(), Some("Team A"));
        assert_eq!(c.field(PeerField::SubjectO).as_deref(), Some("Example Corp"));
    }

    #[test]
    fn a_non_spiffe_first_san_falls_back_to_a_matching_xfcc_element() {
        let mut c = cert();
        c.uri_san = Some("https://example.org/first".into());
        assert_eq!(c.spiffe_id(), None);
        c.xfcc = last_element("Hash=714a;URI=https://example.org/first;URI=spiffe://example.org/ns/a/sa/b");
        assert_eq!(c.spiffe_id().as_deref(), Some("spiffe://example.org/ns/a/sa/b"));
        // An element describing another certificate is ignored.
        c.xfcc = last_element("Hash=ffff;URI=spiffe://example.org/ns/edge/sa/gw");
        assert_eq!(c.spiffe_id(), None);
    }

    #[test]
    fn malformed_spiffe_ids_are_absent() {
        let mut c = cert();
        c.uri_san = Some("spiffe://Example.org/ns/../sa/x".into());
        assert_eq!(c.field(PeerField::SpiffeId), None);
        assert_eq!(c.field(PeerField::SpiffeNamespace), None);
        assert_eq!(
            c.field(PeerField::UriSan).as_deref(),
            Some("spiffe://Example.org/ns/../sa/x")
        );
    }
}
