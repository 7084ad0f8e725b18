#!/usr/bin/env bash
# mqtt: the MQTT tests need the `mosquitto` binary (they start private brokers on free ports) and a
# broker on 127.0.0.1:1883. Idempotent: if something already listens there, nothing is started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$here/tools/env.sh"

mosquitto_bin="$(command -v mosquitto || true)"
[ -n "$mosquitto_bin" ] || [ ! -x /usr/sbin/mosquitto ] || mosquitto_bin=/usr/sbin/mosquitto
if [ -z "$mosquitto_bin" ]; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mosquitto >/dev/null
    mosquitto_bin=/usr/sbin/mosquitto
fi

listening() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
if listening; then
    echo "mqtt: a broker already listens on 127.0.0.1:1883" >&2
    exit 0
fi

# No systemd in CI containers, so start a daemonised Mosquitto bound to loopback only.
conf_dir="$SOTTO_CACHE/mosquitto"
mkdir -p "$conf_dir"
cat > "$conf_dir/mosquitto.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
CONF
"$mosquitto_bin" -d -c "$conf_dir/mosquitto.conf"
for _ in $(seq 50); do
    listening && { echo "mqtt: started Mosquitto on 127.0.0.1:1883" >&2; exit 0; }
    sleep 0.1
done
echo "mqtt: Mosquitto did not come up on 127.0.0.1:1883" >&2
exit 1
