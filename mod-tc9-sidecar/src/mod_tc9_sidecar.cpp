/*
 * This file is part of tc9-sidecar, an AzerothCore module. Released under the
 * GNU AGPL v3 license, as AzerothCore modules are.
 *
 * What the native charter handlers need to be right in a realm spread over several
 * worldservers, each fronted by a tc9-sidecar. The behaviour is specified, rule by
 * rule, in this module's README.md; the rule numbers below refer to it.
 */

#include "Config.h"
#include "DatabaseEnv.h"
#include "Guild.h"
#include "GuildMgr.h"
#include "Log.h"
#include "Opcodes.h"
#include "PetitionMgr.h"
#include "Player.h"
#include "ScriptMgr.h"
#include "WorldPacket.h"
#include "WorldSession.h"

#include <set>

namespace
{
    /// Rule 3: at most this many petition ids are skipped before a purchase.
    constexpr uint32 MAX_PETITION_ID_SKIP = 1000000;

    bool Enabled()
    {
        return sConfigMgr->GetOption<bool>("Tc9Sidecar.Enable", true);
    }

    /// Rule 1: the charter item guid a CMSG_TURN_IN_PETITION names.
    ObjectGuid TurnInPetitionGuid(WorldPacket const& packet)
    {
        WorldPacket copy(packet);
        copy.rpos(0);
        ObjectGuid petitionGuid;
        copy >> petitionGuid;
        return petitionGuid;
    }

    /// Rule 2: the petition of `petitionGuid` in this worldserver's memory matches the
    /// characters database: added or replaced when the database has it, removed when it
    /// does not; its signatures are exactly the database's, related by petition_id.
    /// Returns false when the database has no such petition.
    bool SyncPetition(ObjectGuid petitionGuid)
    {
        QueryResult petitionRow = CharacterDatabase.Query(
            "SELECT ownerguid, petition_id, name, type FROM petition WHERE petitionguid = {}",
            petitionGuid.GetCounter());
        if (!petitionRow)
        {
            if (sPetitionMgr->GetPetition(petitionGuid))
            {
                LOG_INFO("module", "tc9-sidecar: petition {} was removed elsewhere; forgetting it", petitionGuid.ToString());
                sPetitionMgr->RemovePetition(petitionGuid);
            }
            return false;
        }

        Field* fields = petitionRow->Fetch();
        ObjectGuid ownerGuid = ObjectGuid::Create<HighGuid::Player>(fields[0].Get<uint32>());
        uint32 petitionId = fields[1].Get<uint32>();
        std::string name = fields[2].Get<std::string>();
        uint8 type = fields[3].Get<uint8>();

        Petition const* known = sPetitionMgr->GetPetition(petitionGuid);
        if (!known || known->petitionId != petitionId || known->ownerGuid != ownerGuid
            || known->petitionName != name || known->petitionType != type)
        {
            LOG_INFO("module", "tc9-sidecar: loading petition {} (id {}) from the database", petitionGuid.ToString(), petitionId);
            // AddPetition clears the petition's signatures; rule 2 reloads them below.
            sPetitionMgr->AddPetition(petitionGuid, ownerGuid, name, type, petitionId);
        }

        SignatureMap fromDatabase;
        if (QueryResult signs = CharacterDatabase.Query(
                "SELECT playerguid, player_account FROM petition_sign WHERE petition_id = {}", petitionId))
        {
            do
            {
                Field* sign = signs->Fetch();
                fromDatabase[ObjectGuid::Create<HighGuid::Player>(sign[0].Get<uint32>())] = sign[1].Get<uint32>();
            } while (signs->NextRow());
        }

        Signatures& inMemory = (*sPetitionMgr->GetSignatureStore())[petitionGuid];
        inMemory.petitionGuid = petitionGuid;
        if (inMemory.signatureMap != fromDatabase)
        {
            LOG_INFO("module", "tc9-sidecar: petition {} has {} signatures in the database, {} in memory; using the database's",
                petitionGuid.ToString(), fromDatabase.size(), inMemory.signatureMap.size());
            inMemory.signatureMap = fromDatabase;
        }
        return true;
    }

    /// Rule 4: the next guild id is past every guild in the database and every guild this
    /// worldserver holds (its own creations may not be committed yet).
    void RealmUniqueGuildId()
    {
        uint32 next = 1;
        if (QueryResult result = CharacterDatabase.Query("SELECT MAX(guildid) FROM guild"))
            next = (*result)[0].Get<uint32>() + 1;
        while (sGuildMgr->GetGuildById(next))
            ++next;
        sGuildMgr->SetNextGuildId(next);
    }

    /// Rule 5: the owner is not in a guild, as the database says (a cluster worldserver
    /// resets guild membership at login); the guild name is free on every worldserver.
    /// Answers the owner with AzerothCore's own result and returns false when not.
    bool RealmTurnInChecks(WorldSession* session, std::string const& name)
    {
        Player* owner = session->GetPlayer();
        if (CharacterDatabase.Query("SELECT 1 FROM guild_member WHERE guid = {}", owner->GetGUID().GetCounter()))
        {
            WorldPacket data(SMSG_TURN_IN_PETITION_RESULTS, 4);
            data << uint32(PETITION_TURN_ALREADY_IN_GUILD);
            session->SendPacket(&data);
            return false;
        }

        std::string escaped = name;
        CharacterDatabase.EscapeString(escaped);
        if (CharacterDatabase.Query("SELECT 1 FROM guild WHERE name = '{}'", escaped))
        {
            Guild::SendCommandResult(session, GUILD_COMMAND_CREATE, ERR_GUILD_NAME_EXISTS_S, name);
            return false;
        }
        return true;
    }

    /// Rule 3: the next petition id is past every petition id in the database.
    void RealmUniquePetitionId()
    {
        QueryResult result = CharacterDatabase.Query("SELECT MAX(petition_id) FROM petition");
        if (!result)
            return;

        uint32 highest = (*result)[0].Get<uint32>();
        // GeneratePetitionId hands out increasing ids from a per-process counter; draw
        // until the one drawn is the database's highest or above, so that the purchase
        // that follows draws a higher one.
        for (uint32 drawn = 0; drawn < MAX_PETITION_ID_SKIP; ++drawn)
            if (sPetitionMgr->GeneratePetitionId() >= highest)
                return;

        LOG_ERROR("module", "tc9-sidecar: petition ids are {} or more behind the database", MAX_PETITION_ID_SKIP);
    }
}

class mod_tc9_sidecar_ServerScript : public ServerScript
{
public:
    mod_tc9_sidecar_ServerScript() : ServerScript("mod_tc9_sidecar_ServerScript", {
        SERVERHOOK_CAN_PACKET_RECEIVE
    }) { }

    bool CanPacketReceive(WorldSession* session, WorldPacket const& packet) override
    {
        if (!session || !session->GetPlayer() || !Enabled())
            return true;

        switch (packet.GetOpcode())
        {
            case CMSG_TURN_IN_PETITION:
                return OnTurnIn(session, packet);
            case CMSG_PETITION_BUY:
                RealmUniquePetitionId();
                return true;
            default:
                return true;
        }
    }

private:
    /// Rules 1, 2, 4 and 5, right before the native turn-in handler.
    static bool OnTurnIn(WorldSession* session, WorldPacket const& packet)
    {
        ObjectGuid petitionGuid = TurnInPetitionGuid(packet);
        if (!SyncPetition(petitionGuid))
            return true;

        Petition const* petition = sPetitionMgr->GetPetition(petitionGuid);
        if (!petition || petition->petitionType != GUILD_CHARTER_TYPE
            || petition->ownerGuid != session->GetPlayer()->GetGUID())
            return true;

        if (!RealmTurnInChecks(session, petition->petitionName))
            return false;

        RealmUniqueGuildId();
        return true;
    }
};

void AddSC_mod_tc9_sidecar()
{
    new mod_tc9_sidecar_ServerScript();
}
