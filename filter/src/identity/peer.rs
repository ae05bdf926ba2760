//! The downstream mTLS peer as the filter sees it: Envoy's `connection.*` attributes of the
//! certificate the connection presented, and nothing a client can write. In particular the SPIFFE
//! ID is the certificate's first URI SAN, never an `x-forwarded-client-cert` element: under
//! `FORWARD_ONLY` a client writes that header itself, and nothing in it can be checked against the
//! certificate (its `Hash` is one the client knows). An X.509-SVID carries exactly one URI SAN
//! (SPIFFE X.509-SVID §2), so the first one is the SVID's ID.

use super::spiffe::{parse_spiffe_id, SpiffeId};
use super::subject::subject_attr;
use crate::source::PeerField;
use crate::value::InvalidValue;

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
}

impl PeerCert {
    /// The SPIFFE ID: the certificate's first URI SAN, if it is one.
    pub fn spiffe_id(&self) -> Option<String> {
        self.uri_san
            .as_deref()
            .filter(|u| parse_spiffe_id(u).is_some())
            .map(str::to_string)
    }

    /// A part of a Kubernetes-style SPIFFE ID (`/ns/<namespace>/sa/<service-account>`), only for
    /// a local trust domain.
    fn kubernetes(
        &self,
        local_trust_domains: &[String],
        part: for<'s> fn(&SpiffeId<'s>) -> Option<&'s str>,
    ) -> Result<Option<String>, InvalidValue> {
        let Some(uri) = self.spiffe_id() else {
            return Ok(None);
        };
        let Some(id) = parse_spiffe_id(&uri) else {
            return Ok(None);
        };
        match part(&id) {
            None => Ok(None),
            Some(_) if !local_trust_domains.iter().any(|td| td == id.trust_domain) => {
                Err(InvalidValue::ForeignTrustDomain)
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    /// The value of one `peer:` field. `local_trust_domains` are the trust domains whose
    /// Kubernetes-style IDs yield a namespace and a service account: the same names in a partner's
    /// trust domain are other workloads, so theirs are invalid here rather than billed locally.
    pub fn field(&self, field: PeerField, local_trust_domains: &[String]) -> Result<Option<String>, InvalidValue> {
        Ok(match field {
            PeerField::SpiffeId => self.spiffe_id(),
            PeerField::SpiffeTrustDomain => self
                .spiffe_id()
                .and_then(|s| parse_spiffe_id(&s).map(|id| id.trust_domain.to_string())),
            PeerField::SpiffeNamespace => return self.kubernetes(local_trust_domains, |id| id.namespace()),
            PeerField::SpiffeServiceAccount => return self.kubernetes(local_trust_domains, |id| id.service_account()),
            PeerField::Subject => self.subject.clone(),
            PeerField::SubjectCn => self.subject.as_deref().and_then(|s| subject_attr(s, "CN")),
            PeerField::SubjectOu => self.subject.as_deref().and_then(|s| subject_attr(s, "OU")),
            PeerField::SubjectO => self.subject.as_deref().and_then(|s| subject_attr(s, "O")),
            PeerField::DnsSan => self.dns_san.clone(),
            PeerField::UriSan => self.uri_san.clone(),
            PeerField::Fingerprint => self.fingerprint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> PeerCert {
        PeerCert {
            uri_san: Some("spiffe://example.org/ns/team-a/sa/billing-bot".into()),
            subject: Some("CN=billing-bot,OU=Team A,O=Example Corp,C=US".into()),
            dns_san: Some("billing-bot.team-a.svc".into()),
            fingerprint: Some("714a".into()),
        }
    }

    fn field(c: &PeerCert, f: PeerField) -> Option<String> {
        c.field(f, &["example.org".to_string()]).unwrap()
    }

    #[test]
    fn fields_from_a_spiffe_certificate() {
        let c = cert();
        assert_eq!(field(&c, PeerField::SpiffeTrustDomain).as_deref(), Some("example.org"));
        assert_eq!(field(&c, PeerField::SpiffeNamespace).as_deref(), Some("team-a"));
        assert_eq!(
            field(&c, PeerField::SpiffeServiceAccount).as_deref(),
            Some("billing-bot")
        );
        assert_eq!(field(&c, PeerField::SubjectCn).as_deref(), Some("billing-bot"));
        assert_eq!(field(&c, PeerField::SubjectOu).as_deref(), Some("Team A"));
        assert_eq!(field(&c, PeerField::SubjectO).as_deref(), Some("Example Corp"));
    }

    #[test]
    fn a_non_spiffe_first_san_has_no_spiffe_id() {
        let mut c = cert();
        c.uri_san = Some("https://example.org/first".into());
        assert_eq!(c.spiffe_id(), None);
        assert_eq!(field(&c, PeerField::SpiffeNamespace), None);
    }

    #[test]
    fn a_partner_trust_domain_yields_no_local_namespace() {
        let mut c = cert();
        c.uri_san = Some("spiffe://partner.example/ns/team-a/sa/billing-bot".into());
        let local = ["example.org".to_string()];
        assert_eq!(
            c.field(PeerField::SpiffeNamespace, &local),
            Err(InvalidValue::ForeignTrustDomain)
        );
        assert_eq!(
            c.field(PeerField::SpiffeServiceAccount, &local),
            Err(InvalidValue::ForeignTrustDomain)
        );
        assert_eq!(
            c.field(PeerField::SpiffeId, &local).unwrap().as_deref(),
            Some("spiffe://partner.example/ns/team-a/sa/billing-bot")
        );
        // A non-Kubernetes path has no namespace at all, local or not.
        c.uri_san = Some("spiffe://partner.example/workload".into());
        assert_eq!(c.field(PeerField::SpiffeNamespace, &local), Ok(None));
    }

    #[test]
    fn malformed_spiffe_ids_are_absent() {
        let mut c = cert();
        c.uri_san = Some("spiffe://Example.org/ns/../sa/x".into());
        assert_eq!(field(&c, PeerField::SpiffeId), None);
        assert_eq!(field(&c, PeerField::SpiffeNamespace), None);
        assert_eq!(
            field(&c, PeerField::UriSan).as_deref(),
            Some("spiffe://Example.org/ns/../sa/x")
        );
    }
}
