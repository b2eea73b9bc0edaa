# sockets: unix sockets of the sentry's own, inet sockets on host sockets.
.PHONY: test-sockets

test-sockets: ## the socket tests: unit tests, and C programs in a sandbox (needs /dev/kvm and gcc)
	CGO_ENABLED=1 $(GO) test -count=1 -race ./sentry/fs/sock/...
	$(GO) test -count=1 -run 'Sock|Unix|TCP|UDP|ICMP|Inet|Netlink|Packet|Interface|GoNet|BusyboxNetworking' ./sentry/syscalls/
