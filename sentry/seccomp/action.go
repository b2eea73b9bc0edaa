package seccomp

import "moat.dev/moat/sentry/abi"

// Action is the action part of a filter result (SECCOMP_RET_ACTION_FULL).
type Action uint32

// ActionOf splits a filter result into its action and its data.
func ActionOf(ret uint32) (Action, uint16) {
	return Action(ret & abi.SECCOMP_RET_ACTION_FULL), uint16(ret & abi.SECCOMP_RET_DATA)
}

// MoreRestrictive reports whether result a takes precedence over b when
// several filters answer: Linux compares the actions as signed numbers
// and the lowest wins (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF,
// TRACE, LOG, ALLOW).
func MoreRestrictive(a, b uint32) bool {
	return int32(a&abi.SECCOMP_RET_ACTION_FULL) < int32(b&abi.SECCOMP_RET_ACTION_FULL)
}

// Known reports whether the sentry implements action a. An unknown action
// returned by a filter is treated as KILL_PROCESS, as Linux does.
func Known(a Action) bool {
	switch a {
	case abi.SECCOMP_RET_KILL_PROCESS, abi.SECCOMP_RET_KILL_THREAD, abi.SECCOMP_RET_TRAP,
		abi.SECCOMP_RET_ERRNO, abi.SECCOMP_RET_TRACE, abi.SECCOMP_RET_LOG, abi.SECCOMP_RET_ALLOW,
		abi.SECCOMP_RET_USER_NOTIF:
		return true
	}
	return false
}

// String names the action as the kernel's actions_avail does.
func (a Action) String() string {
	switch a {
	case abi.SECCOMP_RET_KILL_PROCESS:
		return "kill_process"
	case abi.SECCOMP_RET_KILL_THREAD:
		return "kill_thread"
	case abi.SECCOMP_RET_TRAP:
		return "trap"
	case abi.SECCOMP_RET_ERRNO:
		return "errno"
	case abi.SECCOMP_RET_USER_NOTIF:
		return "user_notif"
	case abi.SECCOMP_RET_TRACE:
		return "trace"
	case abi.SECCOMP_RET_LOG:
		return "log"
	case abi.SECCOMP_RET_ALLOW:
		return "allow"
	}
	return "unknown"
}
