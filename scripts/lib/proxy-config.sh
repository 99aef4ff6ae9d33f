# Sourced by the proxy benchmarks: the one Palisade configuration they all measure.
#
#   write_proxy_config FILE NAME API_PORT PROXY_PORT UPSTREAM [PARANOIA] [DETECTION_EXTRA] [PROXY_EXTRA]
#
# Writes FILE: the API on 127.0.0.1:API_PORT, data beside FILE (`data/`), warnings only,
# block mode at PARANOIA (1 by default: the shipped level), everything else at its
# shipped default, and one protecting proxy NAME on 127.0.0.1:PROXY_PORT in front of
# UPSTREAM. DETECTION_EXTRA is TOML placed after the `[detection]` keys (more keys, or
# whole sections); PROXY_EXTRA is TOML placed after the proxy's keys.
write_proxy_config() {
  local file=$1 name=$2 api_port=$3 proxy_port=$4 upstream=$5 paranoia=${6:-1}
  cat > "$file" <<TOML
listen = "127.0.0.1:$api_port"
data_dir = "$(dirname "$file")/data"
[log]
level = "warn"
[detection]
mode = "block"
paranoia = $paranoia
${7:-}
[[proxy]]
name = "$name"
listen = "127.0.0.1:$proxy_port"
upstream = "$upstream"
${8:-}
TOML
}
