for n in $(cat ${LAB:-/tmp/ctlab}/names); do ip netns del $n; done
