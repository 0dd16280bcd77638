function Restore-PhotoBulk {
    <#
    .SYNOPSIS
    Puts a backed-up AD thumbnailPhoto back, byte for byte (or removes the photo when the backup recorded none).
    .DESCRIPTION
    Each user's latest backup in -BackupPath (taken by Set-PhotoBulk or Remove-PhotoBulk before they wrote), or the backup
    -BackupId names, is written back to thumbnailPhoto; the photo it replaces is backed up too, so a restore can be undone.
    One PhotoBulk.Result per user (Status Restored, RestoredId = the backup put back, BackupId = the backup of what it
    replaced); failures are non-terminating errors (ErrorId PhotoBulk.<kind>).
    .PARAMETER Identity
    The users. Binds SamAccountName / UserPrincipalName from Get-ADUser output or a CSV, and Identity from PhotoBulk.Result.
    .PARAMETER BackupId
    A backup id (the BackupId of a PhotoBulk.Result); the user's latest backup when absent.
    .PARAMETER MatchBy
    Which AD attribute -Identity names: SamAccountName (default), UserPrincipalName, Mail or EmployeeId.
    .PARAMETER Server
    A domain controller (host name, or an ldaps:// / ldap:// URL). With none, one is found in DNS (SRV _ldap._tcp.dc._msdcs of -Domain).
    .PARAMETER Domain
    The AD DNS domain whose domain controllers are looked up when -Server is absent (default: USERDNSDOMAIN, the Kerberos ticket's realm).
    .PARAMETER DnsServer
    Ask this DNS server (IP or IP:PORT) for the domain controllers instead of the system's resolver.
    .PARAMETER Credential
    The account that writes thumbnailPhoto. With none, the sidecar signs in as you (Kerberos: your Windows logon, or a kinit ticket on Linux/macOS), as Set-ADUser does.
    .PARAMETER CaFile
    A PEM file with the CA of the domain controller's certificate.
    .PARAMETER SearchBase
    Where users are looked up.
    .PARAMETER BackupPath
    The backup folder that Set-PhotoBulk / Remove-PhotoBulk wrote to.
    .EXAMPLE
    Restore-PhotoBulk -Identity john.smith -BackupPath D:\PhotoBackups
    .EXAMPLE
    $results = Get-ChildItem P:\photos | Set-PhotoBulk -Server dc1 -Credential $cred -BackupPath D:\PhotoBackups
    $results | Where-Object Status -eq 'Written' | Restore-PhotoBulk -Server dc1 -Credential $cred -BackupPath D:\PhotoBackups

    Undoes a run: every user it wrote gets the photo from the backup that run took.
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    [OutputType('PhotoBulk.Result')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('SamAccountName', 'UserPrincipalName')][string]$Identity,
        [Parameter(ValueFromPipelineByPropertyName = $true)][string]$BackupId,
        [ValidateSet('SamAccountName', 'UserPrincipalName', 'Mail', 'EmployeeId')][string]$MatchBy = 'SamAccountName',
        [string]$Server, [string]$Domain, [string]$DnsServer, [string]$SearchBase,
        [System.Management.Automation.PSCredential][System.Management.Automation.Credential()]$Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [Parameter(Mandatory = $true)][string]$BackupPath
    )
    begin { $connected = $false }
    process {
        $from = $(if ($BackupId) { "backup $BackupId" } else { 'the latest backup' })
        if (-not $PSCmdlet.ShouldProcess($Identity, "Restore the AD thumbnailPhoto from $from")) { return }
        if (-not $connected) {
            Connect-PhotoBulkDirectory -Cmdlet $PSCmdlet -Server $Server -Domain $Domain -DnsServer $DnsServer -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile -BackupPath $BackupPath
            $connected = $true
        }
        $params = [ordered]@{ identity = $Identity; matchBy = $MatchBy.ToLowerInvariant() }
        if ($BackupId) { $params.backupId = $BackupId }
        Invoke-PhotoBulkPhotoWrite -Cmdlet $PSCmdlet -Method 'photo.restore' -Status 'Restored' -Params $params
    }
}
