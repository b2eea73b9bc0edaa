package shim

import (
	"context"
	"fmt"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"google.golang.org/protobuf/types/known/emptypb"

	"moat.dev/moat/sentry/control"
)

// Pause freezes a container's processes in the sentry's kernel (the
// freezer of sentry/kernel, like a cgroup freezer): each stops at its
// next return to user mode and uses no CPU until Resume. Pausing the
// pod's sandbox container pauses the whole pod.
func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*emptypb.Empty, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	if st, _, _, _ := c.init.state(); st != task.Status_RUNNING {
		return nil, grpcErr(fmt.Errorf("pause %s: %w: cannot pause a task in %s state", r.ID, errdefs.ErrFailedPrecondition, st))
	}
	s.mu.Lock()
	sentry := s.sentry
	if c.frozen || c.pausing {
		s.mu.Unlock()
		return nil, grpcErr(fmt.Errorf("pause %s: %w: cannot pause a paused container", r.ID, errdefs.ErrFailedPrecondition))
	}
	if sentry == nil {
		s.mu.Unlock()
		return nil, grpcErr(fmt.Errorf("pause %s: %w: no sentry", r.ID, errdefs.ErrFailedPrecondition))
	}
	c.pausing = true
	s.mu.Unlock()
	fr, err := sentry.Pause(r.ID, c.sandbox)
	s.mu.Lock()
	c.pausing = false
	c.frozen = err == nil
	s.mu.Unlock()
	if err != nil {
		return nil, grpcErr(fmt.Errorf("pause %s: %w", r.ID, err))
	}
	log.G(ctx).WithField("container", r.ID).WithField("pod", c.sandbox).WithField("settled", fr.Settled).Debug("paused")
	s.send(&eventstypes.TaskPaused{ContainerID: r.ID})
	return empty, nil
}

// Resume thaws a paused container (or pod).
func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*emptypb.Empty, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sentry := s.sentry
	frozen := c.frozen
	s.mu.Unlock()
	if !frozen {
		return nil, grpcErr(fmt.Errorf("resume %s: %w: the container is not paused", r.ID, errdefs.ErrFailedPrecondition))
	}
	if sentry == nil {
		return nil, grpcErr(fmt.Errorf("resume %s: %w: no sentry", r.ID, errdefs.ErrFailedPrecondition))
	}
	if _, err := sentry.Resume(r.ID, c.sandbox); err != nil {
		return nil, grpcErr(fmt.Errorf("resume %s: %w", r.ID, err))
	}
	s.mu.Lock()
	c.frozen = false
	s.mu.Unlock()
	s.send(&eventstypes.TaskResumed{ContainerID: r.ID})
	return empty, nil
}

// podFrozenLocked reports whether the pod's sandbox container is paused.
// Preconditions: s.mu is held.
func (s *service) podFrozenLocked() bool {
	for _, o := range s.containers {
		if o.sandbox && (o.frozen || o.pausing) {
			return true
		}
	}
	return false
}

// paused reports whether c's processes are frozen, by its own pause or
// the pod's.
func (s *service) paused(c *container) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.frozen || c.pausing || s.podFrozenLocked()
}

// pauseStatus is the state of a running process of c: PAUSED once every
// task of its container has stopped, PAUSING before (runc's "pausing"),
// RUNNING when c is not paused.
func (s *service) pauseStatus(c *container) task.Status {
	s.mu.Lock()
	sentry := s.sentry
	own := c.frozen || c.pausing
	pod := s.podFrozenLocked()
	s.mu.Unlock()
	if !own && !pod {
		return task.Status_RUNNING
	}
	if sentry == nil {
		return task.Status_PAUSED
	}
	fr, err := sentry.FreezeState(c.id, c.sandbox)
	if err != nil {
		if control.IsNotFound(err) {
			return task.Status_PAUSED // no process left to stop
		}
		log.G(s.ctx).WithError(err).WithField("container", c.id).Warn("freeze state")
		return task.Status_PAUSING
	}
	if fr.Frozen && fr.Settled {
		return task.Status_PAUSED
	}
	return task.Status_PAUSING
}

// thawEnded resumes a paused container whose init has ended, so that
// nothing of it stays frozen (runc resumes such a container too).
func (s *service) thawEnded(sentry *control.Client, c *container) {
	s.mu.Lock()
	frozen := c.frozen
	c.frozen = false
	s.mu.Unlock()
	if !frozen {
		return
	}
	if _, err := sentry.Resume(c.id, c.sandbox); err != nil {
		log.G(s.ctx).WithError(err).WithField("container", c.id).Debug("resume an ended container")
	}
}
