// Command vipd holds virtual IPs highly available (work in progress).
package main

func main() {}
