// gonet is a Go program for the socket tests: the Go runtime's netpoller
// (epoll, non-blocking sockets, accept4) in the sandbox.
//
//	gonet serve      listen on 127.0.0.1:0, print "PORT n", serve HTTP
//	gonet get URL    print the body of an HTTP GET
//	gonet ifaces     list the network interfaces (netlink)
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Printf("PORT %d\n", l.Addr().(*net.TCPAddr).Port)
		http.HandleFunc("/quit", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "bye")
			go func() { l.Close() }()
		})
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "served %s from the sandbox\n", r.URL.Path)
		})
		http.Serve(l, nil)
	case "ifaces":
		ifs, err := net.Interfaces()
		if err != nil {
			fmt.Println("interfaces:", err)
			os.Exit(1)
		}
		for _, i := range ifs {
			fmt.Println("interface", i.Name)
		}
	case "get":
		resp, err := http.Get(os.Args[2])
		if err != nil {
			fmt.Println("get:", err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("status %d body %s", resp.StatusCode, b)
	}
}
