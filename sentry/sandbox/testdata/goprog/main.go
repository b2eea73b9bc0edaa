// goprog exercises the Go runtime inside a sandbox: goroutines on several
// threads, channels, timers, os/exec of a child, signal.Notify, and a
// panic's traceback.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func main() {
	switch os.Args[1] {
	case "child":
		fmt.Printf("child says %s\n", os.Args[2])
		os.Exit(5)
	case "panic":
		var m map[string]int
		m["boom"] = 1
	case "all":
	}
	// Goroutines across threads, with channels.
	runtime.GOMAXPROCS(4)
	ch := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j <= 100000; j++ {
				s += j
			}
			ch <- s + i
		}(i)
	}
	go func() { wg.Wait(); close(ch) }()
	total := 0
	for v := range ch {
		total += v
	}
	fmt.Printf("goroutines total %d\n", total)
	// Timers.
	start := time.Now()
	<-time.After(30 * time.Millisecond)
	tk := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-tk.C
	}
	tk.Stop()
	fmt.Printf("timers ok %v\n", time.Since(start) >= 45*time.Millisecond)
	// os/exec of a child (fork+exec, pipes, wait).
	out, err := exec.Command(os.Args[0], "child", "hello").Output()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		fmt.Printf("exec failed: %v\n", err)
	}
	fmt.Printf("exec: %q exit %d\n", out, code)
	// Signals through signal.Notify.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	select {
	case s := <-sigs:
		fmt.Printf("signal %v\n", s)
	case <-time.After(5 * time.Second):
		fmt.Println("signal lost")
	}
	// A panic in a child process prints its traceback and exits 2.
	cmd := exec.Command(os.Args[0], "panic")
	stderr, err := cmd.CombinedOutput()
	pc := -1
	if cmd.ProcessState == nil {
		fmt.Printf("panic child: %v\n", err)
	} else if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		pc = ws.ExitStatus()
	}
	fmt.Printf("panic exit %d traceback %v\n", pc, len(stderr) > 0 && contains(string(stderr), "assignment to entry in nil map") && contains(string(stderr), "main.main"))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
