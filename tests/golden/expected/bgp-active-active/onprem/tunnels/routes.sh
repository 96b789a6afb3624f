#!/bin/sh
# Rendered by lab: routes of onprem into its tunnel interfaces whose CHILD_SA is up.
exit 0
