#!/usr/bin/env bash
# Launches difftron on one or many nodes with OpenMPI.
#
#   launch/mpirun.sh [-n RANKS] [-N RANKS_PER_NODE] [-H HOSTFILE] -- train CONFIG.yaml [--set k=v ...]
#
# RANKS defaults to RANKS_PER_NODE × the hosts in HOSTFILE (or 1 node). The
# layout comes from the config: parallel.tp and parallel.pp, dp = RANKS/(tp·pp).
# Ranks are placed by node in order, so tensor-parallel peers (adjacent ranks)
# share a node: keep tp ≤ RANKS_PER_NODE. On CPU nodes each rank uses
# cores/RANKS_PER_NODE threads (runtime.threads overrides).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ranks="" per_node="" hostfile=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    -N) per_node=$2; shift 2 ;;
    -H) hostfile=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "mpirun.sh: unknown option '$1' (expected -n, -N, -H, then -- and the difftron command)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "mpirun.sh: missing the difftron command after --" >&2; exit 2; }
nodes=1
if [ -n "$hostfile" ]; then
  [ -r "$hostfile" ] || { echo "mpirun.sh: cannot read hostfile '$hostfile'" >&2; exit 2; }
  nodes=$(grep -cv '^\s*\(#\|$\)' "$hostfile")
fi
per_node=${per_node:-$(nproc)}
ranks=${ranks:-$((per_node * nodes))}

args=(--np "$ranks" --map-by "ppr:${per_node}:node" --bind-to none)
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
[ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
[ "$ranks" -gt "$((per_node * nodes))" ] && args+=(--oversubscribe)
# Environment every rank needs: threads split by the launcher's placement, and
# for CUDA builds NCCL's own settings (override on clusters with InfiniBand).
args+=(-x OMP_WAIT_POLICY=PASSIVE -x NCCL_DEBUG="${NCCL_DEBUG:-WARN}")
[ -n "${NCCL_SOCKET_IFNAME:-}" ] && args+=(-x NCCL_SOCKET_IFNAME)
[ -n "${NCCL_IB_HCA:-}" ] && args+=(-x NCCL_IB_HCA)
[ -n "${CUDA_VISIBLE_DEVICES:-}" ] && args+=(-x CUDA_VISIBLE_DEVICES)
exec mpirun "${args[@]}" "$here/build/difftron" "$@"
