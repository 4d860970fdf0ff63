# shellcheck shell=bash
# TLS + SASL listeners of the local broker, opt-in with CLOSELOOP_KAFKA_TLS=1 (make ... KAFKA_TLS=1).
# Sourced by kafka.sh. The PLAINTEXT listener stays (the default clients and the tools use it); next to
# it the broker then listens on
#   SASL_SSL  127.0.0.1:$KAFKA_SASL_SSL_PORT  SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over TLS
#   SSL       127.0.0.1:$KAFKA_MTLS_PORT      TLS with a client certificate required (mTLS)
# Certificates (a local CA, the broker's, a client's) are made once with openssl in <state>/kafka/tls;
# the SASL user `closeloop` gets a generated password. <state>/env.tls holds the client settings for the
# SASL_SSL listener (what `make test-tls` runs the suite with) and the mTLS listener's address and files.

KAFKA_SASL_SSL_PORT="${CLOSELOOP_KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_MTLS_PORT="${CLOSELOOP_KAFKA_MTLS_PORT:-$((KAFKA_PORT + 3))}"
K_TLS="$STATE/kafka/tls"
KAFKA_SASL_USER=closeloop

tls_enabled() { [[ "${CLOSELOOP_KAFKA_TLS:-0}" == 1 ]]; }

# make_certs: a CA, the broker's certificate (localhost, 127.0.0.1) and a client certificate, once.
make_certs() {
  [[ -s "$K_TLS/broker-keystore.pem" && -s "$K_TLS/client.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  mkdir -p "$K_TLS"
  chmod 700 "$K_TLS"
  log "kafka: making a local CA and TLS certificates in $K_TLS"
  (
    cd "$K_TLS"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 825 -subj "/CN=closeloop local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    local name cn usage
    for name in broker client; do
      if [[ "$name" == broker ]]; then cn=localhost usage=serverAuth; else cn=closeloop-client usage=clientAuth; fi
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$usage" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.crt" -days 825 \
        -extfile "$name.ext"
      rm -f "$name.csr" "$name.ext"
    done
    # The broker reads a PEM keystore: its PKCS#8 key followed by its certificate chain.
    cat broker.key broker.crt ca.pem >broker-keystore.pem
    cat client.crt ca.pem >client.pem
  ) >>"$LOGS/kafka-tls.log" 2>&1 || fail_component kafka "$KAFKA_SASL_SSL_PORT" "$LOGS/kafka-tls.log" "openssl failed"
}

# tls_config: lines appended to server.properties (later keys override the template's).
tls_config() {
  local password="$1"
  cat <<CONF

# ---- TLS + SASL listeners (CLOSELOOP_KAFKA_TLS=1, deploy/local/kafka_tls.sh) ----
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_MTLS_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
ssl.keystore.type=PEM
ssl.keystore.location=$K_TLS/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$K_TLS/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$password";
CONF
}

# add_scram_user: SCRAM credentials live in the cluster metadata; set them (idempotently) over PLAINTEXT.
add_scram_user() {
  local java="$1" password="$2" mechanism
  for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do  # one mechanism per request
    if ! "$java" -Dlog4j2.configurationFile="$CL_LOCAL/kafka/log4j2.properties" -cp "$K_LIBS/*" \
      org.apache.kafka.tools.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" --alter \
      --add-config "$mechanism=[password=$password]" \
      --entity-type users --entity-name "$KAFKA_SASL_USER" >>"$LOGS/kafka-tls.log" 2>&1; then
      fail_component kafka "$KAFKA_SASL_SSL_PORT" "$LOGS/kafka-tls.log" "creating the $mechanism user failed"
    fi
  done
}

write_tls_env() {
  local password="$1" tmp="$STATE/env.tls.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<ENV
# Client settings for the local broker's SASL_SSL listener (SCRAM-SHA-512), written by deploy/local/kafka_tls.sh.
CLOSELOOP_KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_SASL_SSL_PORT
CLOSELOOP_KAFKA_SECURITY_PROTOCOL=SASL_SSL
CLOSELOOP_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
CLOSELOOP_KAFKA_SASL_USERNAME=$KAFKA_SASL_USER
CLOSELOOP_KAFKA_SASL_PASSWORD=$password
CLOSELOOP_KAFKA_SSL_CAFILE=$K_TLS/ca.pem
# The mTLS listener (SSL, client certificate required) and the client's certificate and key.
CLOSELOOP_KAFKA_MTLS_BOOTSTRAP=$KAFKA_HOST:$KAFKA_MTLS_PORT
CLOSELOOP_KAFKA_MTLS_CERTFILE=$K_TLS/client.pem
CLOSELOOP_KAFKA_MTLS_KEYFILE=$K_TLS/client.key
ENV
  )
  mv -f "$tmp" "$STATE/env.tls"
}
