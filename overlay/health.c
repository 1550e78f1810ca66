// SPDX-License-Identifier: MIT
/*
 * The tunnel's part of a node's health, judged from its status: down is
 * critical (nothing crosses), connecting or stale degraded, and an MTU
 * above what the path carries degraded even while handshakes look fresh
 * (they are small; large packets are what vanish).
 */
#include "overlay/overlay.h"

static void state_health(const struct overlay_status *ov, struct health_report *out)
{
	switch (ov->state) {
	case TUNNEL_FRESH:
		return;
	case TUNNEL_CONNECTING:
		health_add(out, HEALTH_DEGRADED, "tunnel", "tunnel: no handshake yet");
		return;
	case TUNNEL_STALE:
		health_add(out, HEALTH_DEGRADED, "tunnel", "tunnel: %zu of %zu peers without a fresh handshake",
			   ov->n_peers - ov->n_fresh, ov->n_peers);
		return;
	case TUNNEL_DOWN:
		health_add(out, HEALTH_CRITICAL, "tunnel", "tunnel down: %s",
			   ov->last_error[0] ? ov->last_error : "starting");
		return;
	}
	health_add(out, HEALTH_UNKNOWN, "tunnel", "tunnel: state unknown");
}

void overlay_health(const struct overlay_status *ov, struct health_report *out)
{
	state_health(ov, out);
	if (ov->state != TUNNEL_DOWN && !ov->mtu_auto && ov->path_mtu &&
	    ov->mtu + OVERLAY_WG_OVERHEAD > ov->path_mtu) {
		unsigned fit = ov->path_mtu > OVERLAY_WG_OVERHEAD ? ov->path_mtu - OVERLAY_WG_OVERHEAD : 0;

		health_add(out, HEALTH_DEGRADED, "tunnel", "tunnel: mtu %u is above what the path allows "
			   "(%u - %u = %u): large packets are lost while handshakes pass; set cluster.mtu = %u, "
			   "or \"auto\"", ov->mtu, ov->path_mtu, OVERLAY_WG_OVERHEAD, fit, fit);
	}
}
