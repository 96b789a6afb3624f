#!/bin/sh
# Rendered by lab (kernel data plane), run by charon's updown plugin per CHILD_SA and selector pair. This
# tunnel shares its selectors with another tunnel of this node, so it has XFRM interface xfrm<if_id>: its
# policies only match traffic routed through that interface. The route to the peer's prefix follows the
# CHILD_SA (metric = if_id: with both tunnels up the lower one carries the traffic).
id=$(printf %d "${PLUTO_IF_ID_OUT:-0}" 2>/dev/null) || exit 0
[ "$id" -gt 0 ] || exit 0
dev="xfrm$id"
case "$PLUTO_VERB" in
  up-client)
    ip link show "$dev" >/dev/null 2>&1 || ip link add "$dev" type xfrm dev eth0 if_id "$id"
    ip link set "$dev" up
    ip route replace "$PLUTO_PEER_CLIENT" dev "$dev" metric "$id"
    ;;
  down-client)
    # A CHILD_SA replaced make-before-break (IKE reauthentication) goes down after its successor came up:
    # keep the route while another SA pair with this if_id is still installed.
    pairs=$(ip xfrm state | grep -cw "if_id $(printf %#x "$id")")
    [ "$pairs" -gt 2 ] || ip route del "$PLUTO_PEER_CLIENT" dev "$dev" metric "$id" 2>/dev/null
    ;;
esac
exit 0
