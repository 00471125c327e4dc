# scripts/lib/ports.sh: free loopback ports for the services the scripts start (sourced by
# scripts/pg, scripts/kafka and scripts/run; bash).
#
# A port is picked below the kernel's ephemeral range (ip_local_port_range). A port inside that
# range can be handed to any outgoing connection on the machine at any moment, so a server that
# is killed and restarted on the same port (a broker or Postgres in the fault tests) could find
# it held by some client's socket; below the range only another listener can hold it, and
# ports_pick skips ports something listens on.

# True when something accepts connections on 127.0.0.1:$1.
ports_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a free port below the ephemeral range, other than any of the ports given as arguments;
# after 200 tries says so on stderr and returns 1 (so `p=$(ports_pick)` stops a set -e script).
ports_pick() {
	local lo p i x taken
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[[ $lo =~ ^[0-9]+$ && $lo -gt 11024 ]] || lo=32768
	for ((i = 0; i < 200; i++)); do
		p=$((10000 + RANDOM % (lo - 10000)))
		taken=0
		for x in "$@"; do [[ $p == "$x" ]] && taken=1; done
		if [[ $taken -eq 0 ]] && ! ports_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	echo "no free loopback port below $lo found" >&2
	return 1
}
