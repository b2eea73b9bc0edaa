// Command httpserver is a static HTTP server for the e2e tests: it answers
// /hello (and every path not under /files/) with a fixed greeting
// (port-forward checks it) and serves the files of -dir under /files/ (two
// containers of a pod share an emptyDir through it). It exits 0 on
// SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Greeting is what /hello answers.
const Greeting = "hello from moat e2e"

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	dir := flag.String("dir", "/data", "folder served under /files/")
	flag.Parse()

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
	log.Printf("httpserver: listening on %s, serving %s", *addr, *dir)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatalf("httpserver: %v", err)
	}
	log.Printf("httpserver: shut down")
}
