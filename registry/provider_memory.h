/*
 * provider_memory.h: what only the embedded store takes (registry/provider_memory.c);
 * registry/provider.h declares its constructor, reg_provider_memory_create().
 */
#ifndef R53REG_REGISTRY_PROVIDER_MEMORY_H
#define R53REG_REGISTRY_PROVIDER_MEMORY_H

#include "registry/provider.h"
#include "registry/registry.h"

/*
 * The options (record name, tree label) whose names the embedded store's refusals give its
 * sets, as Route 53 would: name='<prefix><group name>.', set-identifier=reg_set_id() or, for
 * an alias, reg_alias_set_id() (record name "r53reg.invalid" and the default tree label
 * until this is called). opt is copied. p must be the embedded store; call it before the
 * store is shared between threads.
 */
void reg_provider_memory_options(struct reg_provider *p, const struct reg_options *opt);

#endif
