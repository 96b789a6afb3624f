#!/bin/sh
# Rendered by lab: routes of onprem-0 into its tunnel interfaces whose CHILD_SA is up.
exit 0
