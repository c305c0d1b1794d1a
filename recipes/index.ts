// Jail fragments a jailfile composes (`import { ... } from 'jail/recipes'`): plain functions returning entries.

export {};
