# Who may change DNS (docs/security.md), over real HTTP(S): token scopes, the caller's address
# and trusted proxies, /backends/self, --allow-cidr, per-client rate limits and connection
# caps, the audit line, token and certificate reloads (in-process and by SIGHUP to the real
# binary) and TLS end to end with libcurl. The TLS case makes throwaway certificates with the
# openssl CLI (scripts/install-deps.sh installs it).
r53_integration_exe(test_security integration/test_security.c)
r53_add_test(NAME integration.security COMMAND test_security @BIN@/r53reg
  scopes proxy cidr ratelimit conncap early framing audit audit-halfclose reload sighup tls
  LABELS "integration;security" TIMEOUT 120)
# Tokens and the certificate reloaded 40 times while four clients keep sending mutations over
# HTTPS with a token present in every version: none may fail (also under ThreadSanitizer).
r53_add_test(NAME integration.security-reload-churn COMMAND test_security @BIN@/r53reg reload-churn
  LABELS "integration;security;concurrency" TIMEOUT 120 TSAN)
