# The sentry's virtual filesystem: VFS core, filesystems, pipes, waiters.
VFS_PKGS := ./sentry/vfs/... ./sentry/fs/... ./sentry/waiter/... ./sentry/auth/...

.PHONY: test-vfs bench-vfs fuzz-vfs

# make test runs the VFS tests under the race detector as well.
test: test-vfs

test-vfs: ## VFS, tmpfs, hostfs (escape tests on real host directories), devfs, pipes, with -race
	CGO_ENABLED=1 $(GO) test -race -count=1 $(VFS_PKGS)

bench-vfs: ## path-walk and pipe figures for the VFS
	$(GO) test -run '^$$' -bench . -benchmem $(VFS_PKGS)

fuzz-vfs: ## fuzz path resolution inside a chroot (FUZZTIME, default 60s)
	$(GO) test -run '^$$' -fuzz '^FuzzResolveStaysInRoot$$' -fuzztime $(or $(FUZZTIME),60s) ./sentry/vfs
