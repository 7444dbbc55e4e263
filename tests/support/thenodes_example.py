"""TheNodes' own example config, shared by the tests of its reading and the runs against the
real builds."""

# TheNodes' config/example.toml (TheNodesDev/TheNodes), every key and value as it has them.
THENODES_EXAMPLE = """\
# Example configuration for TheNodes

# Network settings
port = 50001  # Listening port for incoming connections
bootstrap_nodes = ["127.0.0.1:50002", "127.0.0.1:50003"]  # Initial peers to dial

# Application settings
app_name = "example-app"  # Optional application name used in HELLO

# Realm information (network segmentation)
[realm]
name = "example-realm"     # Realm name
version = "1.0"           # Realm protocol version

# Node identity and state
[node]
state_dir = "data/example-app"  # Directory for node state (node_id, peer store etc.)
id_file = "node_id"              # Filename within state_dir to persist node id
allow_ephemeral = true            # Allow ephemeral UUID when persistence fails
node_type = "daemon"             # Optional node type label advertised in HELLO

# Encryption settings (TLS) — optional
[encryption]
enabled = false                   # Set to true to enable encryption on network transport
mtls = false                      # TLS-only: enable mutual TLS (client auth)
backend = "tls"

[encryption.paths]
own_certificate = "pki/own/example-app.crt"   # Client cert for mTLS (optional)
own_private_key = "pki/own/example-app.key"   # Client key for mTLS (optional)
trusted_cert_dir = "pki/trusted/certs"        # Directory of trusted peer certs (PEM)
trusted_crl_dir = "pki/trusted/crl"           # Directory of CRLs for trusted peers (optional)
rejected_dir = "pki/rejected"                 # Directory to store rejected certs (optional)
issuer_cert_dir = "pki/issuers/certs"         # Directory of issuer/CA certs (optional)
issuer_crl_dir = "pki/issuers/crl"            # Directory of issuer CRLs (optional)

[encryption.noise]
pattern = "XX"
curve = "25519"
cipher = "ChaChaPoly"
hash = "BLAKE2s"
# static_key_path = "pki/own/noise_static.key"

[encryption.noise.trust_policy]
mode = "open"                       # open | allowlist | tofu | observe
store_new = "none"                  # none | observed
allowlist_fingerprints = []
pin_fingerprints = []

[encryption.noise.trust_policy.paths]
allowlist_dir = "pki/noise/trusted"
observed_dir = "pki/noise/observed"

[encryption.trust_policy]
mode = "open"
accept_self_signed = false
store_new_certs = "none"
reject_expired = false
reject_before_valid = false
enforce_ca_chain = false
pin_subjects = []
pin_fingerprints = []
pin_fp_algo = "sha256"
realm_subject_binding = false

[encryption.trust_policy.paths]
observed_dir = "pki/observed/certs"  # Directory to write newly observed leaf certs

# Logging / events configuration
[logging]
json_path = "logs/example_app_audit.jsonl"  # Path for structured audit logs (JSONL)
json_max_bytes = 5242880                     # Rotate after 5MB
json_rotate = 5                              # Keep up to 5 rotated files
disable_console = false                      # Suppress console output when true

# Peer discovery (gossip) configuration
[discovery]
enabled = true               # Enable PeerRequest/PeerList gossip
request_interval_secs = 90   # Interval between automatic PeerRequest messages
request_want = 16            # Peers requested per interval

# Optional realm access policy to constrain allowed remote node types
[realm_access]
allowed_node_types = ["daemon", "admin"]  # Only allow peers that advertise one of these types

# Persistent known peer store (ADR-0002)
[network.persistence]
enabled = true                    # Enable persistence across runs
# path = "data/example-app/peers.json"
max_entries = 1024                # Hard cap on stored peers
ttl_secs = 604800                 # Expire entries older than 7 days (in seconds)
save_interval_secs = 60           # Periodic flush interval in seconds

[network.relay]
enabled = false                   # Enable this node to act as a relay
store_forward = false             # Allow bounded buffering for temporarily absent peers
# queue_max_per_target = 1024     # Optional override per-target cap
# queue_max_global = 8192         # Optional override global cap across targets

[network.nat]
enabled = false
lease_duration_secs = 3600
"""
