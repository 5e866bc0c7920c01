package main

func registerHerald(r map[string]system) {
}
