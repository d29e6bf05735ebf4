/*
 * This file is part of tc9-sidecar, an AzerothCore module. Released under the
 * GNU AGPL v3 license, as AzerothCore modules are.
 */

// From SC
void AddSC_mod_tc9_sidecar();

// Add all
// cf. the naming convention https://github.com/azerothcore/how-to-create-a-module
void Addmod_tc9_sidecarScripts()
{
    AddSC_mod_tc9_sidecar();
}
