// Package model builds the challenge's GPT as GoMLX graphs.
package model
