#!/bin/sh
# Rendered by lab: routes of branch2 into its tunnel interfaces whose CHILD_SA is up.
exit 0
