#!/bin/sh
# Rendered by lab: routes of onprem-1 into its tunnel interfaces whose CHILD_SA is up.
exit 0
