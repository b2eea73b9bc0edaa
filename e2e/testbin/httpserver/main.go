// Command httpserver is a static HTTP server for the e2e tests: it answers
// /hello (and every path not under /files/) with a fixed greeting
// (port-forward checks it) and serves the files of -dir under /files/ (two
// containers of a pod share an emptyDir through it). With -pidfile it
// writes its pid there, as nginx does. Its log lines start with the name
// it was run as. It exits 0 on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Greeting is what /hello answers.
const Greeting = "hello from moat e2e"

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	dir := flag.String("dir", "/data", "folder served under /files/")
	pidfile := flag.String("pidfile", "", "write the pid to this file")
	// Only shown in the command line: critest finds nginx's pid 1 by the
	// words "master process" in /proc/1/cmdline.
	_ = flag.String("role", "", "a label for the command line, unused")
	flag.Parse()
	log.SetPrefix(filepath.Base(os.Args[0]) + ": ")
	log.SetFlags(0)
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Fatalf("write pid file: %v", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, Greeting)
	})
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(*dir))))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	// The line is written once the socket listens: tests wait for it
	// before they connect.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen on %s: %v", *addr, err)
	}
	log.Printf("listening on %s, serving %s", l.Addr(), *dir)
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve on %s: %v", l.Addr(), err)
	}
	log.Printf("shut down")
}
